//! The terminal, taken and always given back: raw mode and the alternate screen are undone
//! when the guard drops, when the program panics (a hook runs first), and on signals.
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{stdout, Stdout};
use std::sync::Once;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Puts the terminal back as it was. Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
}

static HOOK: Once = Once::new();

/// A panic restores the terminal before the message is printed, so it can be read.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

pub struct Guard;

impl Guard {
    pub fn enter() -> std::io::Result<(Guard, Term)> {
        install_panic_hook();
        enable_raw_mode()?;
        let guard = Guard;
        execute!(
            stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide,
            Clear(ClearType::All)
        )?;
        // Not `Terminal::clear`: it asks the terminal for the cursor position and fails where
        // no answer comes (a bare pty, a slow link); ratatui's first frame paints every cell.
        let term = Terminal::new(CrosstermBackend::new(stdout()))?;
        Ok((guard, term))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}
