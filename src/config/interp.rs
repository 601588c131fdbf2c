//! `${VAR}`, `${VAR:-default}` and `${VAR:?message}` from the environment, done on the text so
//! a variable may stand anywhere a scalar may (ports, URLs). Comments are left alone, `$$` is a
//! literal `$`, and every substitution is remembered so error columns map back to the file.

#[derive(Debug, Clone, Copy)]
struct Shift {
    new_start: usize,
    new_len: usize,
    orig_start: usize,
    orig_len: usize,
}

#[derive(Debug)]
pub struct Interpolated {
    pub text: String,
    /// (variable, value) of each substitution the environment made.
    pub from_env: Vec<(String, String)>,
    /// Per line (0-based), the substitutions made, left to right.
    shifts: Vec<Vec<Shift>>,
}

/// An interpolation problem at a 1-based line and column of the original file.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Interpolated {
    /// Maps a 0-based column of the interpolated text back to the original line's column.
    pub fn original_col(&self, line0: usize, col0: usize) -> usize {
        let mut delta: isize = 0;
        for s in self.shifts.get(line0).map(Vec::as_slice).unwrap_or(&[]) {
            if col0 < s.new_start {
                break;
            }
            if col0 < s.new_start + s.new_len {
                return s.orig_start;
            }
            delta = (s.orig_start + s.orig_len) as isize - (s.new_start + s.new_len) as isize;
        }
        (col0 as isize + delta).max(0) as usize
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

/// Where the reference starting at byte `i` of `line` (at its `${`) ends: the offset of its
/// `}`. `${NAME}`, `${NAME:-default}` or `${NAME:?message}`; anything else is an error that
/// names what was found, not a guess at a later `}`.
fn reference_end(line: &str, i: usize) -> Result<usize, String> {
    let name_len = line[i + 2..]
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    let after = &line[i + 2 + name_len..];
    let close = if after.starts_with('}') {
        Some(2 + name_len)
    } else if after.starts_with(":-") || after.starts_with(":?") {
        after.find('}').map(|c| 2 + name_len + c)
    } else {
        None
    };
    close.ok_or_else(|| {
        let name = &line[i + 2..i + 2 + name_len];
        if name.is_empty() {
            "`${` must be followed by a variable name: write `${NAME}`, `${NAME:-default}`, or `$$` for a literal `$`".into()
        } else {
            format!("`${{{name}` is not closed: write `${{{name}}}` or `${{{name}:-default}}`")
        }
    })
}

/// The value of one reference's inside (`NAME`, `NAME:-default`, `NAME:?message`), and the
/// variable's name when the environment gave it.
fn resolve(
    inner: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Option<String>), String> {
    let (name, op, arg) = if let Some(p) = inner.find(":-") {
        (&inner[..p], ":-", &inner[p + 2..])
    } else if let Some(p) = inner.find(":?") {
        (&inner[..p], ":?", &inner[p + 2..])
    } else {
        (inner, "", "")
    };
    if !valid_name(name) {
        return Err(format!(
            "`${{{inner}}}` is not a variable reference (names are letters, digits and `_`)"
        ));
    }
    match (env(name).filter(|v| !v.is_empty()), op) {
        (Some(v), _) => Ok((v, Some(name.to_string()))),
        (None, ":-") => Ok((arg.to_string(), None)),
        (None, ":?") => Err(format!("environment variable `{name}` is not set: {arg}")),
        (None, _) => Err(format!(
            "environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"
        )),
    }
}

pub fn interpolate(
    src: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, Vec<InterpError>> {
    let mut text = String::with_capacity(src.len());
    let mut shifts = Vec::new();
    let mut errors = Vec::new();
    let mut from_env: Vec<(String, String)> = Vec::new();
    for (ln, line) in src.split_inclusive('\n').enumerate() {
        let mut line_shifts = Vec::new();
        let out_line_start = text.len();
        let bytes = line.as_bytes();
        let (mut i, mut quote): (usize, Option<u8>) = (0, None);
        while i < bytes.len() {
            let b = bytes[i];
            match (quote, b) {
                (None, b'#') if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                    text.push_str(&line[i..]);
                    break;
                }
                (None, b'"' | b'\'') => quote = Some(b),
                (Some(q), _) if b == q => quote = None,
                _ => {}
            }
            if b == b'$' && bytes.get(i + 1) == Some(&b'$') {
                line_shifts.push(Shift {
                    new_start: text.len() - out_line_start,
                    new_len: 1,
                    orig_start: i,
                    orig_len: 2,
                });
                text.push('$');
                i += 2;
                continue;
            }
            if b == b'$' && bytes.get(i + 1) == Some(&b'{') {
                let close = match reference_end(line, i) {
                    Ok(c) => c,
                    Err(message) => {
                        errors.push(InterpError {
                            line: ln + 1,
                            col: i + 1,
                            message,
                        });
                        text.push_str(&line[i..]);
                        break;
                    }
                };
                let value = match resolve(&line[i + 2..i + close], env) {
                    Ok((value, Some(name))) => {
                        from_env.push((name, value.clone()));
                        value
                    }
                    Ok((value, None)) => value,
                    Err(message) => {
                        errors.push(InterpError {
                            line: ln + 1,
                            col: i + 1,
                            message,
                        });
                        String::new()
                    }
                };
                line_shifts.push(Shift {
                    new_start: text.len() - out_line_start,
                    new_len: value.len(),
                    orig_start: i,
                    orig_len: close + 1,
                });
                text.push_str(&value);
                i += close + 1;
                continue;
            }
            let ch_len = line[i..].chars().next().map_or(1, char::len_utf8);
            text.push_str(&line[i..i + ch_len]);
            i += ch_len;
        }
        shifts.push(line_shifts);
    }
    if errors.is_empty() {
        Ok(Interpolated {
            text,
            from_env,
            shifts,
        })
    } else {
        Err(errors)
    }
}
