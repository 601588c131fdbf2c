//! Terminal keys against the key map: the map itself (commands, panes, defaults, `tui.keys`)
//! is data in `config::keymap`, shared with the config's validation; this file adds what
//! needs crossterm.
pub use crate::config::keymap::{Binding, Cmd, Ctx, KeyError, KeyMap, Pane};
use crate::config::keys::{KeyName, KeySpec};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Looks up a terminal key event: the pane's own binding first, then the global one.
pub trait Lookup {
    fn lookup(&self, ctx: Ctx, ev: &KeyEvent) -> Option<Cmd>;
}

impl Lookup for KeyMap {
    fn lookup(&self, ctx: Ctx, ev: &KeyEvent) -> Option<Cmd> {
        self.find(ctx, |spec| matches(spec, ev))
    }
}

/// Whether a terminal key event is the configured key. A character's case says all about
/// Shift, so Shift is ignored for characters.
pub fn matches(spec: &KeySpec, ev: &KeyEvent) -> bool {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    let alt = ev.modifiers.contains(KeyModifiers::ALT);
    if spec.ctrl != ctrl || spec.alt != alt {
        return false;
    }
    match (spec.key, ev.code) {
        (KeyName::Char(a), KeyCode::Char(b)) => {
            if ctrl {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        }
        (KeyName::Enter, KeyCode::Enter) => true,
        (KeyName::Esc, KeyCode::Esc) => true,
        (KeyName::Tab, KeyCode::Tab) => !ev.modifiers.contains(KeyModifiers::SHIFT),
        (KeyName::BackTab, KeyCode::BackTab) => true,
        (KeyName::Backspace, KeyCode::Backspace) => true,
        (KeyName::Delete, KeyCode::Delete) => true,
        (KeyName::Insert, KeyCode::Insert) => true,
        (KeyName::Up, KeyCode::Up) => true,
        (KeyName::Down, KeyCode::Down) => true,
        (KeyName::Left, KeyCode::Left) => true,
        (KeyName::Right, KeyCode::Right) => true,
        (KeyName::PageUp, KeyCode::PageUp) => true,
        (KeyName::PageDown, KeyCode::PageDown) => true,
        (KeyName::Home, KeyCode::Home) => true,
        (KeyName::End, KeyCode::End) => true,
        (KeyName::F(a), KeyCode::F(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn pane_keys_win_over_global_ones_and_shift_is_the_case() {
        let m = KeyMap::defaults();
        let s = key(KeyCode::Char('s'), KeyModifiers::NONE);
        assert_eq!(m.lookup(Ctx::In(Pane::Servers), &s), Some(Cmd::Start));
        assert_eq!(m.lookup(Ctx::In(Pane::Gpu), &s), None);
        let big_g = key(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(m.lookup(Ctx::In(Pane::Logs), &big_g), Some(Cmd::Bottom));
        assert_eq!(
            m.lookup(
                Ctx::In(Pane::Bench),
                &key(KeyCode::Char('l'), KeyModifiers::NONE)
            ),
            Some(Cmd::Right)
        );
        assert_eq!(
            m.lookup(
                Ctx::In(Pane::Servers),
                &key(KeyCode::Char('l'), KeyModifiers::NONE)
            ),
            Some(Cmd::ShowLogs)
        );
    }

    #[test]
    fn overrides_replace_the_main_key_and_clashes_are_named() {
        let mut o = IndexMap::new();
        o.insert("stop".to_string(), "X".to_string());
        let m = KeyMap::with_overrides(&o).unwrap();
        assert_eq!(
            m.lookup(
                Ctx::In(Pane::Servers),
                &key(KeyCode::Char('X'), KeyModifiers::SHIFT)
            ),
            Some(Cmd::Stop)
        );
        assert_eq!(
            m.lookup(
                Ctx::In(Pane::Servers),
                &key(KeyCode::Char('x'), KeyModifiers::NONE)
            ),
            None
        );
        o.insert("stop".to_string(), "s".to_string());
        let e = KeyMap::with_overrides(&o).unwrap_err().to_string();
        assert!(
            e.contains("tui.keys.stop: `s` is already the key of `start`"),
            "{e}"
        );
        let mut q = IndexMap::new();
        q.insert("probe".to_string(), "q".to_string());
        let e = KeyMap::with_overrides(&q).unwrap_err().to_string();
        assert!(e.contains("`quit` (everywhere)"), "{e}");
    }

    #[test]
    fn no_default_is_a_multiplexer_chord_and_help_lists_both_levels() {
        let m = KeyMap::defaults();
        assert!(m
            .bindings()
            .iter()
            .all(|b| !b.key.clashes_with_multiplexer()));
        let help = m.help(Ctx::In(Pane::Servers));
        assert!(help.iter().any(|(k, h)| k == "s" && h.starts_with("start")));
        assert!(help
            .iter()
            .any(|(k, h)| k == "k ↑" && h.starts_with("move up")));
        assert!(help.iter().any(|(k, _)| k == "q"));
    }
}
