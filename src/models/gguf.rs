//! The metadata of a GGUF file (llama.cpp's and Ollama's weights): the key-value header and
//! the tensor table, read without touching the tensor data.
use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// Arrays are skipped (token lists can hold 150,000 strings); only their length is kept.
    Array(u64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gguf {
    pub meta: BTreeMap<String, Meta>,
    pub parameters: u64,
    pub tensors: u64,
}

impl Gguf {
    pub fn int(&self, key: &str) -> Option<u64> {
        match self.meta.get(key)? {
            Meta::Int(i) if *i >= 0 => Some(*i as u64),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.meta.get(key)? {
            Meta::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn architecture(&self) -> Option<&str> {
        self.str("general.architecture")
    }

    /// `{arch}.KEY`, as GGUF files store per-architecture numbers.
    pub fn arch_int(&self, key: &str) -> Option<u64> {
        self.int(&format!("{}.{key}", self.architecture()?))
    }

    /// The quantisation from `general.file_type` (llama.cpp's `LLAMA_FTYPE_*`).
    pub fn quantization(&self) -> Option<&'static str> {
        Some(match self.int("general.file_type")? {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            10 => "Q2_K",
            11 => "Q3_K_S",
            12 => "Q3_K_M",
            13 => "Q3_K_L",
            14 => "Q4_K_S",
            15 => "Q4_K_M",
            16 => "Q5_K_S",
            17 => "Q5_K_M",
            18 => "Q6_K",
            19 => "IQ2_XXS",
            20 => "IQ2_XS",
            24 => "IQ1_S",
            25 => "IQ4_NL",
            26 => "IQ3_S",
            28 => "IQ4_XS",
            32 => "BF16",
            _ => "other",
        })
    }
}

/// Refuses counts no real file has, so a corrupt header cannot ask for terabytes.
const MAX_COUNT: u64 = 1 << 24;
const MAX_STRING: u64 = 1 << 24;

struct R<T: Read> {
    r: T,
    version: u32,
}

impl<T: Read> R<T> {
    fn bytes<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> std::io::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> std::io::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    /// Counts are 32-bit in GGUF v1, 64-bit after.
    fn count(&mut self) -> std::io::Result<u64> {
        let n = if self.version == 1 {
            self.u32()? as u64
        } else {
            self.u64()?
        };
        if n > MAX_COUNT * 64 {
            return Err(bad("count too large"));
        }
        Ok(n)
    }
    fn string(&mut self) -> std::io::Result<String> {
        let n = self.count()?;
        if n > MAX_STRING {
            return Err(bad("string too long"));
        }
        let mut b = vec![0u8; n as usize];
        self.r.read_exact(&mut b)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let got = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink())?;
        if got < n {
            return Err(bad("cut short"));
        }
        Ok(())
    }
    fn value(&mut self, ty: u32) -> std::io::Result<Meta> {
        Ok(match ty {
            0 => Meta::Int(self.bytes::<1>()?[0] as i64),
            1 => Meta::Int(self.bytes::<1>()?[0] as i8 as i64),
            2 => Meta::Int(u16::from_le_bytes(self.bytes()?) as i64),
            3 => Meta::Int(i16::from_le_bytes(self.bytes()?) as i64),
            4 => Meta::Int(self.u32()? as i64),
            5 => Meta::Int(i32::from_le_bytes(self.bytes()?) as i64),
            6 => Meta::Float(f32::from_le_bytes(self.bytes()?) as f64),
            7 => Meta::Bool(self.bytes::<1>()?[0] != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                let inner = self.u32()?;
                let n = self.count()?;
                if n > MAX_COUNT {
                    return Err(bad("array too long"));
                }
                for _ in 0..n {
                    self.value(inner)?;
                }
                Meta::Array(n)
            }
            10 => Meta::Int(self.u64()? as i64),
            11 => Meta::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Meta::Float(f64::from_le_bytes(self.bytes()?)),
            _ => return Err(bad("unknown value type")),
        })
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Whether a file starts with GGUF's magic.
pub fn is_gguf(path: &Path) -> bool {
    let mut b = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
        && &b == b"GGUF"
}

pub fn read(path: &Path) -> Result<Gguf, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(BufReader::new(f))
        .map_err(|e| format!("{}: not a readable GGUF file ({e})", path.display()))
}

pub fn parse(r: impl Read) -> std::io::Result<Gguf> {
    let mut r = R { r, version: 2 };
    if &r.bytes::<4>()? != b"GGUF" {
        return Err(bad("no GGUF magic"));
    }
    r.version = r.u32()?;
    let tensors = r.count()?;
    let kvs = r.count()?;
    if tensors > MAX_COUNT || kvs > MAX_COUNT {
        return Err(bad("count too large"));
    }
    let mut g = Gguf {
        tensors,
        ..Gguf::default()
    };
    for _ in 0..kvs {
        let key = r.string()?;
        let ty = r.u32()?;
        let v = r.value(ty)?;
        g.meta.insert(key, v);
    }
    for _ in 0..tensors {
        r.string()?; // the tensor's name
        let dims = r.u32()?;
        if dims > 8 {
            return Err(bad("tensor of more than 8 dimensions"));
        }
        let mut count = 1u64;
        for _ in 0..dims {
            count = count.saturating_mul(r.count()?);
        }
        r.skip(4 + 8)?; // ggml type, data offset
        g.parameters = g.parameters.saturating_add(count);
    }
    Ok(g)
}

/// A GGUF file with these string/int keys and tensors (f32 shapes), for tests and fixtures.
pub fn write(
    path: &Path,
    strings: &[(&str, &str)],
    ints: &[(&str, u32)],
    tensors: &[(&str, &[u64])],
) -> std::io::Result<()> {
    let mut b: Vec<u8> = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend(((strings.len() + ints.len()) as u64).to_le_bytes());
    let s = |b: &mut Vec<u8>, x: &str| {
        b.extend((x.len() as u64).to_le_bytes());
        b.extend(x.as_bytes());
    };
    for (k, v) in strings {
        s(&mut b, k);
        b.extend(8u32.to_le_bytes());
        s(&mut b, v);
    }
    for (k, v) in ints {
        s(&mut b, k);
        b.extend(4u32.to_le_bytes());
        b.extend(v.to_le_bytes());
    }
    for (n, dims) in tensors {
        s(&mut b, n);
        b.extend((dims.len() as u32).to_le_bytes());
        for d in *dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(0u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
    }
    std::fs::write(path, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_header_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.gguf");
        write(
            &p,
            &[("general.architecture", "llama")],
            &[
                ("general.file_type", 15),
                ("llama.context_length", 8192),
                ("llama.block_count", 2),
            ],
            &[("a", &[4, 8]), ("b", &[3])],
        )
        .unwrap();
        assert!(is_gguf(&p));
        let g = read(&p).unwrap();
        assert_eq!(g.architecture(), Some("llama"));
        assert_eq!(g.arch_int("context_length"), Some(8192));
        assert_eq!(g.quantization(), Some("Q4_K_M"));
        assert_eq!((g.tensors, g.parameters), (2, 35));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b"GGUF\x03\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff"[..],
            b"GGU",
            b"GGUF",
        ] {
            assert!(parse(bytes).is_err());
        }
    }
}
