//! Typed events and schema evolution: one event in three versions, written by the types
//! of older builds, read back as the newest shape by streams, projections and
//! subscriptions; and the errors of a read that cannot get there.

use std::path::{Path, PathBuf};

use batpak::prelude::*;
use batpak::projection::{Freshness, Projection};
use serde::{Deserialize, Serialize};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const PLACED: EventKind = EventKind::new(7, 1);
const NOTE: EventKind = EventKind::new(7, 2);

/// Version 1, as the first build wrote it: whole currency units.
#[derive(Debug, Serialize, Deserialize)]
struct PlacedV1 {
    amount: u32,
}

/// Version 2: cents.
#[derive(Debug, Serialize, Deserialize)]
struct PlacedV2 {
    cents: u64,
}

/// Version 3, today: cents and a currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Placed {
    cents: u64,
    currency: String,
}

impl From<PlacedV1> for PlacedV2 {
    fn from(v: PlacedV1) -> Self {
        PlacedV2 {
            cents: u64::from(v.amount) * 100,
        }
    }
}

impl From<PlacedV2> for Placed {
    fn from(v: PlacedV2) -> Self {
        Placed {
            cents: v.cents,
            currency: "EUR".into(),
        }
    }
}

impl EventPayload for PlacedV1 {
    const KIND: EventKind = PLACED;
}

impl EventPayload for PlacedV2 {
    const KIND: EventKind = PLACED;
    const VERSION: u16 = 2;
    const UPCASTS: &'static [Upcast] = &[Upcast::step::<PlacedV1, PlacedV2>()];
}

impl EventPayload for Placed {
    const KIND: EventKind = PLACED;
    const VERSION: u16 = 3;
    const UPCASTS: &'static [Upcast] = &[
        Upcast::step::<PlacedV1, PlacedV2>(),
        Upcast::step::<PlacedV2, Placed>(),
    ];
}

/// Version 3 of the same event by a build that dropped the step from version 1.
#[derive(Debug, Serialize, Deserialize)]
struct PlacedWithoutV1 {
    cents: u64,
    currency: String,
}

impl From<PlacedV2> for PlacedWithoutV1 {
    fn from(v: PlacedV2) -> Self {
        PlacedWithoutV1 {
            cents: v.cents,
            currency: "EUR".into(),
        }
    }
}

impl EventPayload for PlacedWithoutV1 {
    const KIND: EventKind = PLACED;
    const VERSION: u16 = 3;
    const UPCASTS: &'static [Upcast] = &[Upcast::step::<PlacedV2, PlacedWithoutV1>()];
}

/// Another kind on the same entities.
#[derive(Debug, Serialize, Deserialize)]
struct Note {
    text: String,
}

impl EventPayload for Note {
    const KIND: EventKind = NOTE;
}

/// The fixture: a store written by the builds of versions 1 and 2 (see the ignored test
/// at the end, which wrote it).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/typed-v1-v2")
}

fn copy_of_fixture() -> Res<(tempfile::TempDir, PathBuf)> {
    let tmp = tempfile::tempdir()?;
    let to = tmp.path().join("store");
    std::fs::create_dir(&to)?;
    for entry in std::fs::read_dir(fixture())? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok((tmp, to))
}

fn order(n: u32) -> Coordinate {
    Coordinate::new(format!("order:{n}"), "shop")
}

#[test]
fn events_written_by_older_builds_of_the_type_read_as_the_newest_shape() -> Res<()> {
    let (_tmp, dir) = copy_of_fixture()?;
    let store = Store::open(StoreConfig::new(&dir))?;
    store.append_typed(
        &order(1),
        &Placed {
            cents: 999,
            currency: "SEK".into(),
        },
    )?;
    let got: Vec<Placed> = store
        .stream_typed::<Placed>("order:1")?
        .into_iter()
        .map(|t| t.value)
        .collect();
    let eur = |cents| Placed {
        cents,
        currency: "EUR".into(),
    };
    assert_eq!(
        got,
        vec![
            eur(300),
            eur(450),
            Placed {
                cents: 999,
                currency: "SEK".into()
            }
        ],
        "version 1 (3 units), version 2 (450 cents), version 3, in order; the note left out"
    );
    let versions: Vec<u16> = store
        .stream("order:1")?
        .iter()
        .filter(|e| e.kind == PLACED)
        .map(Event::schema_version)
        .collect();
    assert_eq!(
        versions,
        vec![1, 2, 3],
        "each event keeps the version it was written with"
    );
    Ok(())
}

#[test]
fn the_fixture_holds_a_plain_version_1_payload_that_the_raw_api_still_reads() -> Res<()> {
    let (_tmp, dir) = copy_of_fixture()?;
    let store = Store::open_read_only(&dir)?;
    let first = store
        .stream("order:1")?
        .into_iter()
        .next()
        .ok_or("no first event")?;
    assert_eq!(first.schema_version(), 1);
    assert_eq!(first.payload::<PlacedV1>()?.amount, 3);
    let second = store
        .stream("order:1")?
        .into_iter()
        .find(|e| e.schema_version() == 2)
        .ok_or("no version 2 event")?;
    assert_eq!(
        second.payload::<PlacedV2>()?.cents,
        450,
        "the raw read skips the version prefix"
    );
    Ok(())
}

struct Revenue;

impl Projection for Revenue {
    type State = u64;
    const NAME: &'static str = "revenue";
    const VERSION: u32 = 1;
    fn apply(state: &mut u64, event: &Event) {
        if let Ok(p) = event.decode::<Placed>() {
            *state += p.cents;
        }
    }
}

#[test]
fn a_projection_folds_the_upcast_values_of_every_version() -> Res<()> {
    let (_tmp, dir) = copy_of_fixture()?;
    let store = Store::open(StoreConfig::new(&dir))?;
    store.append_typed(
        &order(1),
        &Placed {
            cents: 50,
            currency: "EUR".into(),
        },
    )?;
    assert_eq!(
        store.project::<Revenue>("order:1", Freshness::Latest)?,
        300 + 450 + 50
    );
    Ok(())
}

#[test]
fn a_subscriber_decodes_live_events_of_an_older_version_as_the_newest() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let mut sub = store.subscribe(Region::all().with_kind(PLACED));
    store.append_typed(&order(2), &PlacedV1 { amount: 7 })?;
    let e = sub.recv_timeout(std::time::Duration::from_secs(5))?;
    assert_eq!(
        e.decode::<Placed>()?,
        Placed {
            cents: 700,
            currency: "EUR".into()
        }
    );
    Ok(())
}

#[test]
fn an_event_with_no_upcast_to_the_current_version_is_an_error_naming_kind_version_and_entity(
) -> Res<()> {
    let (_tmp, dir) = copy_of_fixture()?;
    let store = Store::open_read_only(&dir)?;
    let err = store
        .stream_typed::<PlacedWithoutV1>("order:1")
        .err()
        .ok_or("a version 1 event decoded without a path")?;
    let text = err.to_string();
    for part in [
        "order:1",
        "kind 7.1",
        "schema version 1",
        "no upcast from version 1 to 2",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    assert!(
        matches!(&err, ReadError::Payload(p) if p.version == 1 && p.entity == "order:1"),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn an_event_newer_than_the_type_is_refused_rather_than_misread() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    store.append_typed(
        &order(3),
        &Placed {
            cents: 1,
            currency: "EUR".into(),
        },
    )?;
    let err = store
        .stream_typed::<PlacedV2>("order:3")
        .err()
        .ok_or("a version 3 event read as version 2")?;
    assert!(
        err.to_string()
            .contains("written as version 3, newer than the type's 2"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_payload_that_does_not_fit_the_type_names_the_event() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    store.append(&order(4), PLACED, &"not a struct")?;
    let err = store
        .stream_typed::<Placed>("order:4")
        .err()
        .ok_or("a string decoded as a struct")?;
    let text = err.to_string();
    assert!(
        text.contains("order:4") && text.contains("kind 7.1"),
        "{text}"
    );
    assert!(text.contains("Placed"), "the type is named: {text}");
    Ok(())
}

#[test]
fn a_typed_read_of_another_kind_says_so() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let r = store.append_typed(&order(5), &Note { text: "hi".into() })?;
    let e = store.get(r.id)?.ok_or("no event")?;
    let err = e
        .decode::<Placed>()
        .err()
        .ok_or("a note decoded as an order")?;
    assert!(err.to_string().contains("the type reads kind 7.1"), "{err}");
    Ok(())
}

/// Writes `tests/fixtures/typed-v1-v2`: what the builds of versions 1 and 2 left. Run once
/// with `cargo test --test typed -- --ignored`; the fixture is committed.
#[test]
#[ignore]
fn write_the_typed_fixture() -> Res<()> {
    let to = fixture();
    let _ = std::fs::remove_dir_all(&to);
    let store = Store::open(StoreConfig::new(&to))?;
    // The first build had no typed API: it appended the struct as a plain payload.
    store.append(&order(1), PLACED, &PlacedV1 { amount: 3 })?;
    store.append_typed(
        &order(1),
        &Note {
            text: "gift wrap".into(),
        },
    )?;
    // The second build wrote version 2.
    store.append_typed(&order(1), &PlacedV2 { cents: 450 })?;
    store.close()?;
    let _ = std::fs::remove_dir_all(to.join("cache"));
    Ok(())
}
