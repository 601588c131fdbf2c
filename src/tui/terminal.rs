//! The terminal, taken and always given back: raw mode and the alternate screen are undone
//! when the guard drops, when the UI thread panics (a hook runs first, see `panics`), and on
//! signals.
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{stdout, Stdout};
use tokio::sync::mpsc;

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

pub struct Guard;

impl Guard {
    /// Takes the terminal. `panics` receives panics of background tasks (see `panics`).
    pub fn enter(panics: mpsc::UnboundedSender<String>) -> std::io::Result<(Guard, Term)> {
        super::panics::install(panics, restore);
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
