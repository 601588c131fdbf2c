//! Key names for `tui.keys` (remapping the console's keys), parsed without a terminal library
//! so the config module can check them and point at the line at fault.

/// A key as written in the config: `s`, `S`, `ctrl-x`, `alt-enter`, `f5`, `space`, `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub ctrl: bool,
    pub alt: bool,
    pub key: KeyName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyName {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Insert,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    F(u8),
}

impl KeySpec {
    pub fn parse(spec: &str) -> Result<KeySpec, String> {
        let s = spec.trim();
        if s.is_empty() {
            return Err("an empty key".into());
        }
        let (mut ctrl, mut alt) = (false, false);
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower
                .strip_prefix("ctrl-")
                .or_else(|| lower.strip_prefix("c-"))
            {
                if r.is_empty() {
                    break;
                }
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower
                .strip_prefix("alt-")
                .or_else(|| lower.strip_prefix("m-"))
            {
                if r.is_empty() {
                    break;
                }
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let key = match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyName::Enter,
            "esc" | "escape" => KeyName::Esc,
            "tab" => KeyName::Tab,
            "backtab" | "shift-tab" => KeyName::BackTab,
            "backspace" => KeyName::Backspace,
            "delete" | "del" => KeyName::Delete,
            "insert" => KeyName::Insert,
            "up" => KeyName::Up,
            "down" => KeyName::Down,
            "left" => KeyName::Left,
            "right" => KeyName::Right,
            "pageup" | "pgup" => KeyName::PageUp,
            "pagedown" | "pgdn" => KeyName::PageDown,
            "home" => KeyName::Home,
            "end" => KeyName::End,
            "space" => KeyName::Char(' '),
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=24).contains(&n)) =>
            {
                KeyName::F(f[1..].parse().unwrap_or(1))
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_control() => KeyName::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                    _ => {
                        return Err(format!(
                            "`{spec}` is not a key (write a character, or ctrl-X, alt-X, enter, esc, tab, up, f5, space, ...)"
                        ))
                    }
                }
            }
        };
        Ok(KeySpec { ctrl, alt, key })
    }

    /// How the key is shown in hints and help.
    pub fn label(&self) -> String {
        let k = match self.key {
            KeyName::Char(' ') => "space".to_string(),
            KeyName::Char(c) => c.to_string(),
            KeyName::Enter => "enter".into(),
            KeyName::Esc => "esc".into(),
            KeyName::Tab => "tab".into(),
            KeyName::BackTab => "shift-tab".into(),
            KeyName::Backspace => "backspace".into(),
            KeyName::Delete => "del".into(),
            KeyName::Insert => "ins".into(),
            KeyName::Up => "↑".into(),
            KeyName::Down => "↓".into(),
            KeyName::Left => "←".into(),
            KeyName::Right => "→".into(),
            KeyName::PageUp => "pgup".into(),
            KeyName::PageDown => "pgdn".into(),
            KeyName::Home => "home".into(),
            KeyName::End => "end".into(),
            KeyName::F(n) => format!("f{n}"),
        };
        format!(
            "{}{}{k}",
            if self.ctrl { "ctrl-" } else { "" },
            if self.alt { "alt-" } else { "" }
        )
    }

    /// Chords that terminal multiplexers take for themselves (tmux's and screen's prefix).
    pub fn clashes_with_multiplexer(&self) -> bool {
        self.ctrl && matches!(self.key, KeyName::Char('b') | KeyName::Char('a'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_specs() {
        assert_eq!(
            KeySpec::parse("s").unwrap(),
            KeySpec {
                ctrl: false,
                alt: false,
                key: KeyName::Char('s')
            }
        );
        assert_eq!(
            KeySpec::parse("ctrl-X").unwrap(),
            KeySpec {
                ctrl: true,
                alt: false,
                key: KeyName::Char('x')
            }
        );
        assert_eq!(KeySpec::parse("alt-enter").unwrap().key, KeyName::Enter);
        assert_eq!(KeySpec::parse("F5").unwrap().key, KeyName::F(5));
        assert_eq!(KeySpec::parse("-").unwrap().key, KeyName::Char('-'));
        assert_eq!(
            KeySpec::parse("ctrl--").unwrap(),
            KeySpec {
                ctrl: true,
                alt: false,
                key: KeyName::Char('-')
            }
        );
        assert!(
            KeySpec::parse("ctrl-").is_err(),
            "a modifier with no key (ctrl and minus is `ctrl--`)"
        );
        assert!(KeySpec::parse("sx").is_err());
        assert!(KeySpec::parse("ctrl-b").unwrap().clashes_with_multiplexer());
        assert_eq!(KeySpec::parse("space").unwrap().label(), "space");
    }
}
