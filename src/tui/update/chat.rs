//! The Chat pane: the message box, sending, streamed events and the settings form.
use super::super::action::Effect;
use super::super::app::*;
use super::*;

pub(super) fn chat_typing(app: &mut App, fx: &mut Vec<Effect>, k: KeyEvent) {
    let newline =
        k.modifiers.contains(KeyModifiers::ALT) || k.modifiers.contains(KeyModifiers::SHIFT);
    match k.code {
        // The footer says "esc cancels" while an answer streams: one key does it, and the
        // next one leaves the message box.
        KeyCode::Esc if app.chat.streaming.is_some() => back(app, fx),
        KeyCode::Esc => app.typing = Typing::None,
        KeyCode::Enter if newline => app.chat.input.insert_newline(),
        KeyCode::Enter => send_chat(app, fx),
        _ => {
            app.chat.input.input(k);
        }
    }
}

pub(super) fn send_chat(app: &mut App, fx: &mut Vec<Effect>) {
    let text = app.chat.input.lines().join("\n");
    if text.trim().is_empty() {
        return;
    }
    if app.chat.streaming.is_some() {
        app.notify("an answer is still streaming (esc cancels it)", true);
        return;
    }
    let Some(route) = app.chat_route().map(String::from) else {
        app.notify("no route to chat with", true);
        return;
    };
    let id = app.chat.next_id;
    app.chat.next_id += 1;
    let req = app.chat.conv.request(&text, &app.chat.params);
    app.chat.streaming = Some(Streaming {
        id,
        user: text,
        text: String::new(),
        route: route.clone(),
        served_by: None,
        attempts: Vec::new(),
        ttft_ms: None,
    });
    app.chat.input = {
        let mut t = ratatui_textarea::TextArea::default();
        t.set_placeholder_text("Type a message · enter sends · alt-enter: new line · esc: leave");
        t
    };
    app.chat.back = 0;
    fx.push(Effect::ChatSend { id, route, req });
}

pub(super) fn chat_event(app: &mut App, ev: ChatEvent) {
    let Some(s) = app.chat.streaming.as_mut().filter(|s| s.id == ev.id()) else {
        // A cancelled answer's late events.
        return;
    };
    match ev {
        ChatEvent::Started {
            served_by,
            attempts,
            ..
        } => {
            s.served_by = Some(served_by);
            s.attempts = attempts;
        }
        ChatEvent::FirstToken { ttft_ms, .. } => s.ttft_ms = Some(ttft_ms),
        ChatEvent::Delta { text, .. } => s.text.push_str(&text),
        ChatEvent::Finished { meta, .. } => {
            let s = app.chat.streaming.take().expect("checked above");
            if let Some(e) = &meta.error {
                app.notify(format!("chat: {}", e.lines().next().unwrap_or(e)), true);
            }
            app.chat.conv.turns.push(Turn {
                user: s.user,
                answer: s.text,
                meta: *meta,
            });
        }
    }
}

pub(super) fn chat_setting_text(app: &App, field: usize) -> String {
    match field {
        0 => app.chat.conv.system.clone(),
        1 => app
            .chat
            .params
            .temperature
            .map(|t| t.to_string())
            .unwrap_or_default(),
        _ => app
            .chat
            .params
            .max_tokens
            .map(|t| t.to_string())
            .unwrap_or_default(),
    }
}

/// Applies a chat setting; false (with a notice) when the text is not a valid value.
pub(super) fn apply_chat_setting(app: &mut App, field: usize, text: &str) -> bool {
    let t = text.trim();
    match field {
        0 => app.chat.conv.system = text.to_string(),
        1 => match t {
            "" => app.chat.params.temperature = None,
            v => match v.parse::<f32>() {
                Ok(x) if (0.0..=2.0).contains(&x) => app.chat.params.temperature = Some(x),
                _ => {
                    app.notify(
                        "temperature: a number from 0 to 2 (empty: the route's default)",
                        true,
                    );
                    return false;
                }
            },
        },
        _ => match t {
            "" => app.chat.params.max_tokens = None,
            v => match v.parse::<u32>() {
                Ok(x) if x > 0 => app.chat.params.max_tokens = Some(x),
                _ => {
                    app.notify(
                        "max tokens: a whole number above 0 (empty: the route's default)",
                        true,
                    );
                    return false;
                }
            },
        },
    }
    true
}
