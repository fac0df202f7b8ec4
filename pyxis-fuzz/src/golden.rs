//! The golden vector file of `pyxis-proto`, parsed for seeding and replaying fuzz bodies.
//!
//! Owns: reading `name<TAB>direction<TAB>hex<TAB>description` lines. Must never be used on
//! untrusted input (it panics on a malformed vector file, which is a test-data bug).

/// The golden frames file shipped with `pyxis-proto` (the original Go client's golden frames).
pub const GOLDEN_FRAMES: &str = include_str!("../../pyxis-proto/tests/data/golden_frames.txt");

/// One golden vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// The vector's name, e.g. `req_ping`.
    pub name: String,
    /// `request` or `response`.
    pub direction: String,
    /// The frame bytes.
    pub bytes: Vec<u8>,
}

/// Every vector of [`GOLDEN_FRAMES`], in file order.
///
/// # Panics
/// If the file is malformed (wrong column count or bad hex).
pub fn vectors() -> Vec<Vector> {
    GOLDEN_FRAMES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "vector line must have 4 columns: {l}");
            let hex = cols[2];
            assert!(hex.len().is_multiple_of(2), "odd hex length in {}", cols[0]);
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .unwrap_or_else(|e| panic!("bad hex in {}: {e}", cols[0]));
            Vector {
                name: cols[0].to_owned(),
                direction: cols[1].to_owned(),
                bytes,
            }
        })
        .collect()
}
