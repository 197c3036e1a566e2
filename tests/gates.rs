//! Policy gates: evaluation modes, denials write nothing, bypass is durable and logged,
//! the pipeline's sealed receipt, the decision log, and the shipped gates.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use batpak::gate::{
    AllowedKinds, DecodesAs, MaxPayloadSize, Outcome, RateLimit, RequiresCausation,
};
use batpak::prelude::*;
use common::*;

const PLACED: EventKind = EventKind::new(1, 1);
const SHIPPED: EventKind = EventKind::new(1, 3);

fn gated(dir: &std::path::Path, gates: GateSet) -> Result<Store, OpenError> {
    Store::open_with(
        StoreConfig::new(dir),
        OpenOptions::default().with_gates(gates),
    )
}

fn strict(mode: Evaluation) -> GateSet {
    GateSet::new(mode)
        .with(MaxPayloadSize { max_bytes: 16 })
        .with(RequiresCausation {
            kinds: vec![SHIPPED],
        })
        .with(AllowedKinds {
            per_scope: HashMap::from([("eu".to_string(), vec![PLACED])]),
            default: None,
        })
}

fn denials(err: AppendError) -> Vec<String> {
    match err {
        AppendError::Denied(d) => d.into_iter().map(|d| d.code).collect(),
        other => vec![format!("not a denial: {other}")],
    }
}

#[test]
fn evaluate_all_returns_every_denial_and_fail_fast_only_the_first() -> TestResult {
    let dir = tempfile::tempdir()?;
    let bad = (
        Coordinate::new("o", "eu"),
        SHIPPED,
        "a payload well over sixteen bytes",
    );
    let all = gated(&dir.path().join("all"), strict(Evaluation::EvaluateAll))?;
    let err = all.append(&bad.0, bad.1, &bad.2).err().ok_or("allowed")?;
    assert_eq!(
        denials(err),
        vec![
            "payload_too_large",
            "causation_required",
            "kind_not_allowed"
        ]
    );
    let fast = gated(&dir.path().join("fast"), strict(Evaluation::FailFast))?;
    let err = fast.append(&bad.0, bad.1, &bad.2).err().ok_or("allowed")?;
    assert_eq!(denials(err), vec!["payload_too_large"]);
    Ok(())
}

#[test]
fn a_denied_proposal_writes_nothing_on_any_write_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = gated(dir.path(), strict(Evaluation::FailFast))?;
    let c = Coordinate::new("o", "eu");
    store.append(&c, PLACED, &1u8)?;
    let bytes_before = store.stats().bytes_written;
    assert!(store.append(&c, SHIPPED, &1u8).is_err());
    assert!(store
        .submit(&c, SHIPPED, &1u8, AppendOptions::default())
        .is_err());
    let batch = vec![
        BatchItem::new(&c, PLACED, &1u8)?,
        BatchItem::new(&c, SHIPPED, &2u8)?,
    ];
    assert!(matches!(
        store.append_batch(batch, false),
        Err(AppendError::Denied(_))
    ));
    let proposal = Proposal::new(&c, SHIPPED, &1u8)?;
    assert!(store.pipeline().submit(proposal).is_err());
    assert_eq!(store.stats().events, 1, "only the allowed event exists");
    assert_eq!(
        store.stats().bytes_written,
        bytes_before,
        "no byte was written for a denial"
    );
    Ok(())
}

#[test]
fn the_pipeline_returns_a_sealed_receipt_once_every_gate_passed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = gated(dir.path(), strict(Evaluation::EvaluateAll))?;
    let c = Coordinate::new("o", "us");
    let placed = store.pipeline().submit(Proposal::new(&c, PLACED, &1u8)?)?;
    assert_eq!(placed.gates_passed(), 3);
    let shipped = Proposal::new(&c, SHIPPED, &2u8)?
        .with_options(AppendOptions::default().caused_by(placed.id()));
    let receipt = store.pipeline().submit(shipped)?;
    assert_eq!(
        store.get(receipt.id())?.and_then(|e| e.causation),
        Some(placed.id())
    );
    Ok(())
}

#[test]
fn a_bypass_is_recorded_durably_in_the_event_and_in_the_decision_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = Coordinate::new("o", "eu");
    let id = {
        let store = gated(dir.path(), strict(Evaluation::FailFast))?;
        let r = store.bypass(
            "operator fix: ticket 4711",
            &c,
            SHIPPED,
            &"a payload well over sixteen bytes",
            AppendOptions::default(),
        )?;
        let log = store.decisions().recent();
        let last = log.last().ok_or("no decision logged")?;
        assert_eq!(last.outcome, Outcome::Bypass);
        assert_eq!(last.message, "operator fix: ticket 4711");
        assert_eq!(last.event, Some(r.id));
        assert_eq!(store.decisions().totals(), (0, 0, 1));
        assert!(
            store
                .bypass(" ", &c, SHIPPED, &1u8, AppendOptions::default())
                .is_err(),
            "a bypass needs a reason"
        );
        r.id
    };
    let store = gated(dir.path(), strict(Evaluation::FailFast))?;
    let e = store
        .get(id)?
        .ok_or("bypassed event missing after reopen")?;
    assert_eq!(
        e.bypass_reason.as_deref(),
        Some("operator fix: ticket 4711")
    );
    assert_eq!(e.payload::<String>()?, "a payload well over sixteen bytes");
    Ok(())
}

#[test]
fn the_decision_log_counts_per_gate_and_keeps_recent_messages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = gated(dir.path(), strict(Evaluation::EvaluateAll))?;
    let c = Coordinate::new("o", "eu");
    let ok = store.append(&c, PLACED, &1u8)?;
    let _ = store.append(&c, SHIPPED, &1u8);
    let counters = store.decisions().counters();
    assert_eq!(counters["max_payload_size"].allowed, 2);
    assert_eq!(counters["requires_causation"].denied, 1);
    assert_eq!(counters["allowed_kinds"].denied, 1);
    let recent = store.decisions().recent();
    assert_eq!(recent[0].outcome, Outcome::Allow);
    assert_eq!(recent[0].event, Some(ok.id));
    let deny = recent
        .iter()
        .find(|d| d.code.as_deref() == Some("causation_required"))
        .ok_or("no denial logged")?;
    assert!(
        deny.message.contains("must name the event that caused it"),
        "{}",
        deny.message
    );
    assert_eq!(deny.gate.as_deref(), Some("requires_causation"));
    Ok(())
}

#[test]
fn a_store_without_gates_logs_nothing_and_behaves_as_before() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    store.append(
        &Coordinate::new("o", "eu"),
        SHIPPED,
        &"no gate cares about this long payload",
    )?;
    assert!(store.decisions().recent().is_empty());
    assert_eq!(
        store
            .pipeline()
            .submit(Proposal::new(&Coordinate::new("o", "eu"), PLACED, &1u8)?)?
            .gates_passed(),
        0
    );
    Ok(())
}

#[test]
fn the_rate_limit_allows_n_events_per_entity_and_window() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = gated(
        dir.path(),
        GateSet::new(Evaluation::FailFast).with(RateLimit::new(3, Duration::from_millis(200))),
    )?;
    let a = Coordinate::new("a", "s");
    for i in 0..3u8 {
        store.append(&a, PLACED, &i)?;
    }
    assert_eq!(
        denials(store.append(&a, PLACED, &9u8).err().ok_or("allowed")?),
        vec!["rate_limited"]
    );
    store.append(&Coordinate::new("b", "s"), PLACED, &1u8)?;
    std::thread::sleep(Duration::from_millis(250));
    store.append(&a, PLACED, &4u8)?;
    Ok(())
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Order {
    id: u64,
    items: u32,
}

#[test]
fn decodes_as_denies_payloads_of_the_wrong_shape() -> TestResult {
    #[derive(serde::Serialize)]
    struct Wrong {
        name: String,
    }
    #[derive(serde::Serialize)]
    struct Right {
        id: u64,
        items: u32,
    }
    let dir = tempfile::tempdir()?;
    let store = gated(
        dir.path(),
        GateSet::new(Evaluation::FailFast).with(DecodesAs::<Order>::new("Order", vec![PLACED])),
    )?;
    let c = Coordinate::new("o", "s");
    store.append(&c, PLACED, &Right { id: 1, items: 2 })?;
    let err = store
        .append(&c, PLACED, &Wrong { name: "x".into() })
        .err()
        .ok_or("allowed")?;
    assert_eq!(denials(err), vec!["payload_does_not_decode"]);
    store.append(
        &c,
        SHIPPED,
        &Wrong {
            name: "other kinds are not checked".into(),
        },
    )?;
    Ok(())
}

/// A gate that reads the entity's sequence, then lets another append land before the
/// checked one is written.
struct Racy(Arc<std::sync::OnceLock<Arc<Store>>>);

impl Gate for Racy {
    fn name(&self) -> &str {
        "racy"
    }

    fn check(&self, p: &Proposal, view: &StoreView<'_>) -> Result<(), Denial> {
        let _seen = view.entity_sequence(p.entity());
        if p.kind() == SHIPPED {
            if let Some(store) = self.0.get() {
                let _ = store.bypass(
                    "concurrent writer",
                    &p.coordinate(),
                    PLACED,
                    &0u8,
                    AppendOptions::default(),
                );
            }
        }
        Ok(())
    }
}

#[test]
fn a_gate_decision_is_never_applied_to_a_state_it_did_not_see() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cell = Arc::new(std::sync::OnceLock::new());
    let store = Arc::new(gated(
        dir.path(),
        GateSet::new(Evaluation::FailFast).with(Racy(cell.clone())),
    )?);
    let _ = cell.set(store.clone());
    let c = Coordinate::new("acct", "s");
    store.append(&c, PLACED, &1u8)?;
    let err = store
        .append(&c, SHIPPED, &2u8)
        .err()
        .ok_or("written on a state the gate did not see")?;
    assert!(matches!(err, AppendError::Conflict { .. }), "{err}");
    assert_eq!(
        store.stream("acct")?.len(),
        2,
        "the first append and the concurrent one"
    );
    Ok(())
}
