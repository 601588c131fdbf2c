//! What a model's weights weigh, from the safetensors headers alone: the first 8 bytes give
//! the header's length and the header lists every tensor's dtype and shape, so a 140 GB model
//! is sized by reading a few kilobytes per file.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The safetensors format caps its header at 100 MB; we stop well before reading that much.
const MAX_HEADER: u64 = 100_000_000;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Weights {
    pub files: usize,
    pub parameters: u64,
    pub bytes: u64,
    /// Parameters per dtype (`BF16`, `F8_E4M3`, ...): the largest is the model's dtype.
    pub by_dtype: BTreeMap<String, u64>,
}

impl Weights {
    /// The dtype that holds most parameters.
    pub fn main_dtype(&self) -> Option<&str> {
        self.by_dtype
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(d, _)| d.as_str())
    }
}

/// One file's tensors: (dtype name, element count, bytes).
pub fn read_header(path: &Path) -> Result<Vec<(String, u64, u64)>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| format!("{}: no safetensors header ({e})", path.display()))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER {
        return Err(format!(
            "{}: header of {n} bytes is not safetensors",
            path.display()
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| format!("{}: header cut short ({e})", path.display()))?;
    let meta: safetensors::tensor::Metadata = serde_json::from_slice(&header)
        .map_err(|e| format!("{}: bad safetensors header: {e}", path.display()))?;
    Ok(meta
        .tensors()
        .values()
        .map(|t| {
            let count = t.shape.iter().map(|d| *d as u64).product::<u64>();
            let bytes = (t.data_offsets.1 - t.data_offsets.0) as u64;
            (format!("{:?}", t.dtype), count, bytes)
        })
        .collect())
}

/// Every `*.safetensors` file directly in `dir` (sharded models keep theirs side by side).
pub fn of_dir(dir: &Path) -> Result<Option<Weights>, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    files.sort();
    let mut w = Weights::default();
    for f in &files {
        for (dtype, count, bytes) in read_header(f)? {
            w.parameters += count;
            w.bytes += bytes;
            *w.by_dtype.entry(dtype).or_default() += count;
        }
        w.files += 1;
    }
    Ok(Some(w))
}

/// Writes a safetensors file with the given tensors (zeros), for tests and fixtures.
pub fn write_file(
    path: &Path,
    tensors: &[(&str, safetensors::Dtype, Vec<usize>)],
) -> std::io::Result<()> {
    let datas: Vec<(String, Vec<u8>, safetensors::Dtype, Vec<usize>)> = tensors
        .iter()
        .map(|(n, d, s)| {
            let len = s.iter().product::<usize>() * d.bitsize() / 8;
            (n.to_string(), vec![0u8; len], *d, s.clone())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = datas
        .iter()
        .map(|(n, b, d, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("sizes match"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::Dtype;

    #[test]
    fn a_sharded_model_is_summed_from_its_headers() {
        let d = tempfile::tempdir().unwrap();
        write_file(
            &d.path().join("model-00001-of-00002.safetensors"),
            &[("a", Dtype::BF16, vec![4, 8]), ("b", Dtype::F32, vec![3])],
        )
        .unwrap();
        write_file(
            &d.path().join("model-00002-of-00002.safetensors"),
            &[("c", Dtype::BF16, vec![16])],
        )
        .unwrap();
        std::fs::write(d.path().join("config.json"), "{}").unwrap();
        let w = of_dir(d.path()).unwrap().unwrap();
        assert_eq!((w.files, w.parameters, w.bytes), (2, 51, 64 + 12 + 32));
        assert_eq!(w.main_dtype(), Some("BF16"));
    }

    #[test]
    fn a_file_that_is_not_safetensors_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.safetensors");
        std::fs::write(&p, [0xff; 16]).unwrap();
        let e = of_dir(d.path()).unwrap_err();
        assert!(e.contains("x.safetensors"), "{e}");
    }
}
