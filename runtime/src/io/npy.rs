//! The `.npy` format (numpy's `np.save`): a magic string, a version, and a header that is a
//! Python dict literal naming the dtype (`descr`), the order and the shape; the data follows,
//! row-major (C order) or column-major (Fortran order).

use crate::dtype::DType;
use crate::error::{Error, FileError, Result};
use std::path::Path;

/// The first bytes of every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// What a `.npy` header says.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Element dtype.
    pub dtype: DType,
    /// Elements stored most significant byte first.
    pub big_endian: bool,
    /// Column-major data.
    pub fortran: bool,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub data_offset: u64,
}

/// The dtype of a numpy type string (`'<f8'`, `'|b1'`, `'>i4'`) and whether it is big-endian.
///
/// # Errors
/// `UnsupportedDType`-like `Malformed` errors naming the type string for types Tessera lacks.
pub fn parse_descr(path: &Path, descr: &str) -> Result<(DType, bool)> {
    let bad = |why: &str| {
        Error::file(
            path,
            FileError::Malformed,
            format!("dtype {descr:?}: {why}"),
        )
    };
    let unsupported = |why: &str| {
        Error::file(
            path,
            FileError::Unsupported,
            format!("dtype {descr:?}: {why}"),
        )
    };
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(|| bad("empty"))?;
    let code = chars.as_str();
    let big = match order {
        '<' => false,
        '>' => true,
        '|' | '=' => cfg!(target_endian = "big"),
        _ => return Err(bad("no byte-order mark")),
    };
    let dtype = match code {
        "b1" => DType::Bool,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "f4" => DType::F32,
        "f8" => DType::F64,
        _ => {
            return Err(unsupported(
                "not a dtype Tessera has (bool, int32, int64, float32, float64)",
            ))
        }
    };
    Ok((dtype, big && dtype != DType::Bool))
}

/// The type string numpy writes for `dtype` in this machine's byte order.
pub fn descr_of(dtype: DType) -> &'static str {
    let little = cfg!(target_endian = "little");
    match (dtype, little) {
        (DType::Bool, _) => "|b1",
        (DType::I32, true) => "<i4",
        (DType::I64, true) => "<i8",
        (DType::F32, true) => "<f4",
        (DType::F64, true) => "<f8",
        (DType::I32, false) => ">i4",
        (DType::I64, false) => ">i8",
        (DType::F32, false) => ">f4",
        (DType::F64, false) => ">f8",
    }
}

/// Parses the header at the start of `bytes` (the first bytes of the file: at least the magic,
/// the version and the length fields; `read_more` is asked for the rest when it is longer).
///
/// # Errors
/// `Malformed` naming what is wrong: the magic, the version, the dict, a key, the shape.
pub fn parse_header(path: &Path, head: &[u8]) -> Result<Header> {
    let bad = |why: String| {
        Error::file(
            path,
            FileError::Malformed,
            format!("not a .npy file: {why}"),
        )
    };
    if head.len() < 10 || &head[..6] != MAGIC {
        return Err(bad("no \\x93NUMPY magic at the start".into()));
    }
    let (major, minor) = (head[6], head[7]);
    let (len, start) = match major {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10usize),
        2 | 3 => {
            if head.len() < 12 {
                return Err(bad("header length cut short".into()));
            }
            (
                u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
                12usize,
            )
        }
        _ => return Err(bad(format!("format version {major}.{minor} is unknown"))),
    };
    let end = start
        .checked_add(len)
        .ok_or_else(|| bad("header length overflows".into()))?;
    if head.len() < end {
        return Err(bad(format!(
            "the header claims {len} bytes; the file has {} after the length field",
            head.len() - start
        )));
    }
    let text =
        std::str::from_utf8(&head[start..end]).map_err(|_| bad("the header is not text".into()))?;
    let dict = Dict::parse(text).map_err(|e| bad(format!("header {text:?}: {e}")))?;
    let descr = dict.string("descr").map_err(&bad)?;
    let fortran = dict.boolean("fortran_order").map_err(&bad)?;
    let shape = dict.shape("shape").map_err(&bad)?;
    let (dtype, big_endian) = parse_descr(path, &descr)?;
    Ok(Header {
        dtype,
        big_endian,
        fortran,
        shape,
        data_offset: end as u64,
    })
}

/// A header for `dtype` and `shape` (C order, this machine's byte order), padded with spaces
/// so that the data starts at a multiple of 64 bytes, as numpy writes it (version 1.0, or 2.0
/// for a header past 65,535 bytes).
pub fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        descr_of(dtype),
        shape_text
    );
    let build = |prefix: usize| {
        let unpadded = prefix + dict.len() + 1;
        let pad = (64 - unpadded % 64) % 64;
        let mut h = dict.clone().into_bytes();
        h.extend(std::iter::repeat_n(b' ', pad));
        h.push(b'\n');
        h
    };
    let h = build(10);
    let mut out = MAGIC.to_vec();
    match u16::try_from(h.len()) {
        Ok(n) => {
            out.extend([1, 0]);
            out.extend(n.to_le_bytes());
            out.extend(h);
        }
        Err(_) => {
            let h = build(12);
            out.extend([2, 0]);
            out.extend((h.len() as u32).to_le_bytes());
            out.extend(h);
        }
    }
    out
}

/// The values of a header dict: strings, booleans and tuples of integers.
#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// A parsed header dict.
struct Dict(Vec<(String, Value)>);

impl Dict {
    fn parse(text: &str) -> std::result::Result<Dict, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        p.skip_ws();
        p.expect(b'{')?;
        let mut items = Vec::new();
        loop {
            p.skip_ws();
            if p.peek() == Some(b'}') {
                p.i += 1;
                break;
            }
            let key = p.string()?;
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let value = p.value()?;
            if items.iter().any(|(k, _)| *k == key) {
                return Err(format!("key {key:?} given twice"));
            }
            items.push((key, value));
            p.skip_ws();
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at byte {}", p.i)),
            }
        }
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(format!("text after the dict at byte {}", p.i));
        }
        Ok(Dict(items))
    }
    fn get(&self, key: &str) -> std::result::Result<&Value, String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("no {key:?} in the header"))
    }
    fn string(&self, key: &str) -> std::result::Result<String, String> {
        match self.get(key)? {
            Value::Str(s) => Ok(s.clone()),
            v => Err(format!(
                "{key:?} is {v:?}, not a type string (a structured dtype)"
            )),
        }
    }
    fn boolean(&self, key: &str) -> std::result::Result<bool, String> {
        match self.get(key)? {
            Value::Bool(b) => Ok(*b),
            v => Err(format!("{key:?} is {v:?}, not True or False")),
        }
    }
    fn shape(&self, key: &str) -> std::result::Result<Vec<usize>, String> {
        match self.get(key)? {
            Value::Tuple(t) => Ok(t.clone()),
            v => Err(format!("{key:?} is {v:?}, not a tuple of integers")),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }
    fn string(&mut self) -> std::result::Result<String, String> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a string at byte {}", self.i)),
        };
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == q {
                let s = std::str::from_utf8(&self.s[start..self.i])
                    .map_err(|_| "a string is not text".to_string())?
                    .to_string();
                self.i += 1;
                return Ok(s);
            }
            if c == b'\\' {
                return Err("escapes in header strings are not supported".into());
            }
            self.i += 1;
        }
        Err("a string is not closed".into())
    }
    fn value(&mut self) -> std::result::Result<Value, String> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(b')') {
                        self.i += 1;
                        return Ok(Value::Tuple(dims));
                    }
                    let start = self.i;
                    while matches!(self.peek(), Some(b'0'..=b'9')) {
                        self.i += 1;
                    }
                    let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                    // Python 2 wrote long integers with an L suffix.
                    if self.peek() == Some(b'L') {
                        self.i += 1;
                    }
                    let d: usize = digits
                        .parse()
                        .map_err(|_| format!("expected a dimension at byte {start}"))?;
                    dims.push(d);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b')') => {}
                        _ => return Err(format!("expected ',' or ')' at byte {}", self.i)),
                    }
                }
            }
            _ => {
                for (word, v) in [("True", true), ("False", false)] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(Value::Bool(v));
                    }
                }
                Err(format!("unexpected value at byte {}", self.i))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("x.npy")
    }

    #[test]
    fn headers_round_trip_and_align_the_data() {
        for (dt, shape) in [
            (DType::F64, vec![3usize, 4]),
            (DType::Bool, vec![]),
            (DType::I32, vec![7]),
            (DType::F32, vec![0, 5, 2]),
        ] {
            let h = header_bytes(dt, &shape);
            assert_eq!(h.len() % 64, 0, "data starts 64-aligned");
            let got = parse_header(p(), &h).unwrap();
            assert_eq!(got.dtype, dt);
            assert_eq!(got.shape, shape);
            assert!(!got.fortran);
            assert_eq!(got.data_offset, h.len() as u64);
        }
    }

    #[test]
    fn numpy_headers_parse() {
        let text = b"{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }          \n";
        let mut h = MAGIC.to_vec();
        h.extend([1, 0]);
        h.extend((text.len() as u16).to_le_bytes());
        h.extend(text);
        let got = parse_header(p(), &h).unwrap();
        assert_eq!(got.dtype, DType::I32);
        assert!(got.big_endian && got.fortran);
        assert_eq!(got.shape, vec![2, 3]);
    }

    #[test]
    fn malformed_headers_are_errors_naming_the_file() {
        let cases: Vec<Vec<u8>> = vec![
            b"PK\x03\x04 not npy at all".to_vec(),
            {
                let mut h = MAGIC.to_vec();
                h.extend([1, 0, 200, 0]);
                h.extend(b"{'descr': '<f8'");
                h
            },
            {
                let t = b"{'descr': '<f8', 'shape': (2,), }\n";
                let mut h = MAGIC.to_vec();
                h.extend([1, 0]);
                h.extend((t.len() as u16).to_le_bytes());
                h.extend(t);
                h
            },
            {
                let t = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, -1), }\n";
                let mut h = MAGIC.to_vec();
                h.extend([1, 0]);
                h.extend((t.len() as u16).to_le_bytes());
                h.extend(t);
                h
            },
            {
                let mut h = MAGIC.to_vec();
                h.extend([9, 0, 0, 0]);
                h
            },
        ];
        for bytes in cases {
            match parse_header(p(), &bytes) {
                Err(Error::File {
                    path,
                    kind: FileError::Malformed,
                    msg,
                }) => {
                    assert_eq!(path, "x.npy");
                    assert!(!msg.is_empty());
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
    }
}
