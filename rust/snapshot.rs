//! The snapshot envelope: a versioned, checksummed container for a monitor's state.
//!
//! ```text
//! offset  size  field
//! 0       8     magic bytes  89 'L' 'T' 'M' 'O' 'N' '\r' '\n'
//! 8       4     format version, u32 little-endian
//! 12      8     payload length in bytes, u64 little-endian
//! 20      len   payload (all integers u64 LE, all floats f64 LE bit patterns)
//! 20+len  4     CRC-32 (IEEE 802.3, as zlib.crc32) of every byte before it
//! ```
//!
//! The magic borrows PNG's trick: the high-bit first byte catches 7-bit transfers
//! and the CR LF pair catches newline translation. Decoding checks, in order, the
//! magic, the declared length against the bytes given (truncated or oversized),
//! the checksum, and only then the version, so that a flipped bit anywhere is
//! reported as corruption and a genuine snapshot of another version as such.
//! Nothing is allocated from a length field before that length is checked against
//! the bytes that remain, so hostile input cannot ask for a huge allocation.

use std::fmt;

/// The first eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"\x89LTMON\r\n";

/// Bytes before the payload: magic, version, payload length.
pub const HEADER_LEN: usize = 8 + 4 + 8;

/// Bytes after the payload: the CRC-32.
pub const TRAILER_LEN: usize = 4;

/// Why a byte string is not an intact snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Fewer bytes than the header (or the declared length) needs.
    Truncated { needed: usize, got: usize },
    /// More bytes than the header declares.
    Oversized { expected: usize, got: usize },
    /// The first bytes are not [`MAGIC`].
    BadMagic,
    /// The stored checksum does not match the bytes.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// A format version this build cannot read.
    UnsupportedVersion { got: u32, supported: u32 },
    /// The payload does not parse (a field runs past its end, an unknown tag).
    Malformed { what: String },
    /// The payload parses but describes a state no monitor can be in.
    Inconsistent { what: String },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Truncated { needed, got } => write!(
                f,
                "truncated: a complete snapshot needs {needed} bytes, got {got}"
            ),
            SnapshotError::Oversized { expected, got } => write!(
                f,
                "oversized: the header declares {expected} bytes, got {got} \
                 ({} extra)",
                got - expected
            ),
            SnapshotError::BadMagic => write!(
                f,
                "not a monitor snapshot (the magic bytes are wrong); \
                 pass the bytes returned by Monitor.to_bytes()"
            ),
            SnapshotError::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 the bytes are corrupted"
            ),
            SnapshotError::UnsupportedVersion { got, supported } => write!(
                f,
                "format version {got} is not supported; this build reads version {supported}"
            ),
            SnapshotError::Malformed { what } => write!(f, "malformed payload: {what}"),
            SnapshotError::Inconsistent { what } => write!(f, "inconsistent state: {what}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Generator polynomial of CRC-32 (IEEE 802.3) in reflected bit order.
const CRC32_POLY: u32 = 0xEDB8_8320;

/// Tables for slicing-by-8: `TABLES[0]` is the classic byte table, and
/// `TABLES[k][b]` is the CRC of byte `b` followed by `k` zero bytes.
const fn crc32_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                CRC32_POLY ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut byte = 0;
    while byte < 256 {
        let mut k = 1;
        while k < 8 {
            let previous = tables[k - 1][byte];
            tables[k][byte] = (previous >> 8) ^ tables[0][(previous & 0xFF) as usize];
            k += 1;
        }
        byte += 1;
    }
    tables
}

static CRC32_TABLES: [[u32; 256]; 8] = crc32_tables();

/// CRC-32 (IEEE 802.3, reflected, initial and final XOR `0xFFFFFFFF`), the checksum
/// of zlib, gzip and PNG.
///
/// ```text
/// crc = !fold(!0, bytes, |c, b| (c >> 8) ^ T[(c ^ b) & 0xFF])
/// ```
///
/// Algorithm: slicing-by-8 (Kounavis and Berry, 2005), eight bytes per step from
/// eight 256-entry tables built at compile time.
///
/// # Examples
/// ```
/// use ltrend::snapshot::crc32;
/// // The standard check value of CRC-32.
/// assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
/// assert_eq!(crc32(b""), 0);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    let t = &CRC32_TABLES;
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let lo = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ crc;
        let hi = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xFF) as usize]
            ^ t[2][((hi >> 8) & 0xFF) as usize]
            ^ t[1][((hi >> 16) & 0xFF) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ u32::from(byte)) & 0xFF) as usize];
    }
    !crc
}

/// Builds a payload field by field (little-endian).
#[derive(Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// An empty payload with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Writer {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// One byte (a tag).
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    /// An unsigned integer, 8 bytes little-endian.
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A size as u64 (lossless on every platform Rust supports).
    pub fn usize(&mut self, value: usize) {
        self.u64(value as u64);
    }

    /// A float as its IEEE bit pattern (NaN payloads and -0.0 survive).
    pub fn f64(&mut self, value: f64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A length-prefixed run of f64 values.
    pub fn f64s(&mut self, values: &[f64]) {
        self.usize(values.len());
        self.bytes.reserve(values.len() * 8);
        for value in values {
            self.f64(*value);
        }
    }

    /// A short string, prefixed by its length in one byte.
    ///
    /// # Panics
    /// When `text` is longer than 255 bytes; callers pass fixed method names.
    pub fn short_str(&mut self, text: &str) {
        let len = u8::try_from(text.len()).expect("short_str: at most 255 bytes");
        self.u8(len);
        self.bytes.extend_from_slice(text.as_bytes());
    }

    /// Wrap the payload in the envelope: header, payload, checksum.
    pub fn seal(self, version: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.bytes.len() + TRAILER_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(self.bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.bytes);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

/// Check the envelope and return the payload.
///
/// # Errors
/// [`SnapshotError::Truncated`], [`SnapshotError::Oversized`],
/// [`SnapshotError::BadMagic`], [`SnapshotError::ChecksumMismatch`] or
/// [`SnapshotError::UnsupportedVersion`], checked in that order.
///
/// # Examples
/// ```
/// use ltrend::snapshot::{open, SnapshotError, Writer};
/// let mut w = Writer::default();
/// w.u64(7);
/// let bytes = w.seal(1);
/// assert_eq!(open(&bytes, 1).unwrap(), 7u64.to_le_bytes());
/// assert!(matches!(open(&bytes[..10], 1), Err(SnapshotError::Truncated { .. })));
/// ```
pub fn open(bytes: &[u8], version: u32) -> Result<&[u8], SnapshotError> {
    let got = bytes.len();
    if got < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        // A short prefix of the magic is a truncation, anything else is not ours.
        return if got < MAGIC.len() && MAGIC.starts_with(bytes) {
            Err(SnapshotError::Truncated {
                needed: HEADER_LEN + TRAILER_LEN,
                got,
            })
        } else {
            Err(SnapshotError::BadMagic)
        };
    }
    if got < HEADER_LEN {
        return Err(SnapshotError::Truncated {
            needed: HEADER_LEN + TRAILER_LEN,
            got,
        });
    }
    let stored_version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&bytes[12..HEADER_LEN]);
    let payload_len = u64::from_le_bytes(len_bytes);
    let expected = usize::try_from(payload_len)
        .ok()
        .and_then(|len| len.checked_add(HEADER_LEN + TRAILER_LEN))
        .unwrap_or(usize::MAX);
    if got < expected {
        return Err(SnapshotError::Truncated {
            needed: expected,
            got,
        });
    }
    if got > expected {
        return Err(SnapshotError::Oversized { expected, got });
    }
    let body = expected - TRAILER_LEN;
    let stored = u32::from_le_bytes([
        bytes[body],
        bytes[body + 1],
        bytes[body + 2],
        bytes[body + 3],
    ]);
    let computed = crc32(&bytes[..body]);
    if stored != computed {
        return Err(SnapshotError::ChecksumMismatch { stored, computed });
    }
    if stored_version != version {
        return Err(SnapshotError::UnsupportedVersion {
            got: stored_version,
            supported: version,
        });
    }
    Ok(&bytes[HEADER_LEN..body])
}

/// Reads a payload field by field; every read is bounds-checked.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes` (a payload returned by [`open`]).
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SnapshotError> {
        let remaining = self.bytes.len() - self.pos;
        if n > remaining {
            return Err(SnapshotError::Malformed {
                what: format!("{what} needs {n} bytes, {remaining} remain"),
            });
        }
        let field = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(field)
    }

    /// One byte; `what` names the field in the error.
    pub fn u8(&mut self, what: &str) -> Result<u8, SnapshotError> {
        Ok(self.take(1, what)?[0])
    }

    /// An unsigned integer written by [`Writer::u64`].
    pub fn u64(&mut self, what: &str) -> Result<u64, SnapshotError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(raw))
    }

    /// A u64 that must fit in `usize`.
    pub fn usize(&mut self, what: &str) -> Result<usize, SnapshotError> {
        let value = self.u64(what)?;
        usize::try_from(value).map_err(|_| SnapshotError::Malformed {
            what: format!("{what} = {value} does not fit in memory"),
        })
    }

    /// A float written by [`Writer::f64`].
    pub fn f64(&mut self, what: &str) -> Result<f64, SnapshotError> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    /// A length-prefixed run of f64 values; the length is checked before allocating.
    pub fn f64s(&mut self, what: &str) -> Result<Vec<f64>, SnapshotError> {
        let count = self.usize(what)?;
        let remaining = self.bytes.len() - self.pos;
        if count > remaining / 8 {
            return Err(SnapshotError::Malformed {
                what: format!("{what} claims {count} values, only {remaining} bytes remain"),
            });
        }
        let raw = self.take(count * 8, what)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// A string written by [`Writer::short_str`].
    pub fn short_str(&mut self, what: &str) -> Result<String, SnapshotError> {
        let len = usize::from(self.u8(what)?);
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| SnapshotError::Malformed {
            what: format!("{what} is not UTF-8"),
        })
    }

    /// Refuse bytes left over after the last field.
    pub fn finish(self) -> Result<(), SnapshotError> {
        let left = self.bytes.len() - self.pos;
        if left == 0 {
            Ok(())
        } else {
            Err(SnapshotError::Malformed {
                what: format!("{left} unexpected bytes after the last field"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook bit-at-a-time CRC-32, the oracle for the sliced one.
    fn crc32_bitwise(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    CRC32_POLY ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn sliced_crc_matches_the_bitwise_one_at_every_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                crc32(&data[..len]),
                crc32_bitwise(&data[..len]),
                "len {len}"
            );
        }
    }

    fn sealed() -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(42);
        w.f64s(&[1.5, -0.0]);
        w.short_str("paper");
        w.seal(3)
    }

    #[test]
    fn round_trip_reads_every_field() {
        let bytes = sealed();
        let mut r = Reader::new(open(&bytes, 3).unwrap());
        assert_eq!(r.u64("a").unwrap(), 42);
        let values = r.f64s("b").unwrap();
        assert_eq!(values[0], 1.5);
        assert!(values[1] == 0.0 && values[1].is_sign_negative());
        assert_eq!(r.short_str("c").unwrap(), "paper");
        r.finish().unwrap();
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = sealed();
        for len in 0..bytes.len() {
            let err = open(&bytes[..len], 3).unwrap_err();
            assert!(
                matches!(err, SnapshotError::Truncated { got, .. } if got == len),
                "len {len}: {err:?}"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let bytes = sealed();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(open(&flipped, 3).is_err(), "bit {bit} went unnoticed");
        }
    }

    #[test]
    fn extra_bytes_wrong_magic_and_version_are_named() {
        let mut bytes = sealed();
        let expected = bytes.len();
        bytes.push(0);
        assert_eq!(
            open(&bytes, 3),
            Err(SnapshotError::Oversized {
                expected,
                got: expected + 1
            })
        );
        assert_eq!(
            open(b"PK\x03\x04 not ours at all", 3),
            Err(SnapshotError::BadMagic)
        );
        assert_eq!(
            open(&sealed(), 4),
            Err(SnapshotError::UnsupportedVersion {
                got: 3,
                supported: 4
            })
        );
    }

    #[test]
    fn a_huge_declared_count_is_refused_before_allocating() {
        let mut w = Writer::default();
        w.u64(u64::MAX / 8);
        let bytes = w.seal(1);
        let mut r = Reader::new(open(&bytes, 1).unwrap());
        assert!(matches!(
            r.f64s("ring"),
            Err(SnapshotError::Malformed { .. })
        ));
    }
}
