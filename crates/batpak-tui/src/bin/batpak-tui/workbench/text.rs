//! Text from the store (payloads, gate messages, entity names) made safe to print: no
//! control character or escape sequence reaches the terminal.

/// Replaces control characters (C0, DEL, C1) with `·` and caps the length in characters.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push_str("...");
            break;
        }
        let control = c.is_control() || ('\u{80}'..='\u{9f}').contains(&c);
        // Bidirectional overrides can reorder what is shown around them.
        let bidi = ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c);
        out.push(if control || bidi { '·' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn escape_sequences_and_control_characters_are_neutralised() {
        let hostile = "ok\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\r\n\u{9b}31m\u{202e}x";
        let shown = clean(hostile, 100);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.starts_with("ok·]52;c;"), "{shown:?}");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(clean("abcdef", 3), "abc...");
        assert_eq!(clean("abc", 3), "abc");
    }
}
