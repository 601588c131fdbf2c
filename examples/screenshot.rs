//! The README's picture of the console, made from the real thing: the release binary runs
//! in a pseudo-terminal on the shipped `dashboard.yaml` (the demo server starts by itself),
//! the screen is read back with `vt100`, and each cell is drawn with DejaVu Sans Mono into a
//! PNG. Run again when the console's look changes:
//!
//!   cargo build --release && cargo run --release --example screenshot -- docs/console.png
use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COLS: u16 = 150;
const ROWS: u16 = 42;
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";
const BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf";

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/console.png".into());
    let screen = capture();
    let png = draw(&screen);
    std::fs::write(&out, png).unwrap_or_else(|e| fail(&format!("{out}: {e}")));
    eprintln!("wrote {out} ({COLS}x{ROWS} cells)");
}

fn fail(msg: &str) -> ! {
    eprintln!("screenshot: {msg}");
    std::process::exit(1)
}

/// Runs the console until the demo server is ready and its first answer has streamed, and
/// returns the screen then.
fn capture() -> vt100::Screen {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/anorag-tui");
    if !bin.exists() {
        fail("build the console first: cargo build --release");
    }
    let state = tempfile::tempdir().unwrap();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut cmd = CommandBuilder::new(&bin);
    cmd.args(["--config", "dashboard.yaml"]);
    cmd.cwd(&root);
    cmd.env("TERM", "xterm-256color");
    cmd.env("ANORAG_STATE_DIR", state.path());
    let mut child = pair
        .slave
        .spawn_command(cmd)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
    let sink = parser.clone();
    let mut reader = pair.master.try_clone_reader().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut keys = pair.master.take_writer().unwrap();
    let mut send = |b: &[u8]| {
        let _ = keys.write_all(b);
        let _ = keys.flush();
    };
    let wait = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !parser.lock().unwrap().screen().contents().contains(what) {
            if Instant::now() > deadline {
                fail(&format!("no `{what}` on the screen"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("ready");
    // A load test on the demo server, its charts moving.
    send(b"5");
    wait("Bench");
    send(b":route demo\r");
    std::thread::sleep(Duration::from_millis(500));
    send(b"r");
    std::thread::sleep(Duration::from_secs(8));
    let screen = parser.lock().unwrap().screen().clone();
    send(b"q");
    std::thread::sleep(Duration::from_millis(500));
    send(b"y");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    screen
}

/// xterm's palette: the 16 named colours, the 6x6x6 cube, the grey ramp.
fn rgb(c: vt100::Color, fallback: [u8; 3]) -> [u8; 3] {
    const BASE: [[u8; 3]; 16] = [
        [0, 0, 0],
        [205, 49, 49],
        [13, 188, 121],
        [229, 229, 16],
        [36, 114, 200],
        [188, 63, 188],
        [17, 168, 205],
        [229, 229, 229],
        [102, 102, 102],
        [241, 76, 76],
        [35, 209, 139],
        [245, 245, 67],
        [59, 142, 234],
        [214, 112, 214],
        [41, 184, 219],
        [255, 255, 255],
    ];
    match c {
        vt100::Color::Default => fallback,
        vt100::Color::Rgb(r, g, b) => [r, g, b],
        vt100::Color::Idx(i) if i < 16 => BASE[i as usize],
        vt100::Color::Idx(i) if i < 232 => {
            let i = i - 16;
            let step = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            [step(i / 36), step((i / 6) % 6), step(i % 6)]
        }
        vt100::Color::Idx(i) => {
            let v = 8 + (i - 232) * 10;
            [v, v, v]
        }
    }
}

/// Where each of a Braille cell's eight dots sits: (column, row) for bits 0 to 7.
const BRAILLE_DOTS: [(usize, usize); 8] = [
    (0, 0),
    (0, 1),
    (0, 2),
    (1, 0),
    (1, 1),
    (1, 2),
    (0, 3),
    (1, 3),
];

fn braille(c: char) -> Option<u32> {
    let v = u32::from(c);
    (0x2800..=0x28ff).contains(&v).then_some(v - 0x2800)
}

fn draw(screen: &vt100::Screen) -> Vec<u8> {
    let regular = std::fs::read(FONT).unwrap_or_else(|e| fail(&format!("{FONT}: {e}")));
    let bold = std::fs::read(BOLD).unwrap_or_else(|_| regular.clone());
    let fonts = [
        FontRef::try_from_slice(&regular).unwrap(),
        FontRef::try_from_slice(&bold).unwrap(),
    ];
    let scale = PxScale::from(16.0);
    let scaled = fonts[0].as_scaled(scale);
    let cw = scaled.h_advance(fonts[0].glyph_id('M')).ceil() as usize;
    let ch = (scaled.ascent() - scaled.descent()).ceil() as usize + 2;
    let (w, h) = (cw * COLS as usize, ch * ROWS as usize);
    let (fg0, bg0) = ([204, 204, 204], [22, 22, 28]);
    let mut px = vec![0u8; w * h * 3];
    for row in 0..ROWS {
        for col in 0..COLS {
            let Some(cell) = screen.cell(row, col) else {
                continue;
            };
            let (mut fg, mut bg) = (rgb(cell.fgcolor(), fg0), rgb(cell.bgcolor(), bg0));
            if cell.inverse() {
                std::mem::swap(&mut fg, &mut bg);
            }
            let (x0, y0) = (col as usize * cw, row as usize * ch);
            for y in y0..y0 + ch {
                for x in x0..x0 + cw {
                    px[(y * w + x) * 3..][..3].copy_from_slice(&bg);
                }
            }
            let Some(c) = cell.contents().chars().next() else {
                continue;
            };
            if let Some(bits) = braille(c) {
                // Chart dots: the font has no Braille, so each dot is drawn as a square.
                let dot = (cw / 4).max(2);
                for (bit, (dx, dy)) in BRAILLE_DOTS.iter().enumerate() {
                    if bits & (1 << bit) == 0 {
                        continue;
                    }
                    let x = x0 + dx * cw / 2 + (cw / 2 - dot) / 2;
                    let y = y0 + dy * ch / 4 + (ch / 4 - dot) / 2;
                    for yy in y..(y + dot).min(h) {
                        for xx in x..(x + dot).min(w) {
                            px[(yy * w + xx) * 3..][..3].copy_from_slice(&fg);
                        }
                    }
                }
                continue;
            }
            let font = &fonts[usize::from(cell.bold())];
            let glyph = font.glyph_id(c).with_scale_and_position(
                scale,
                ab_glyph::point(x0 as f32, y0 as f32 + 1.0 + scaled.ascent()),
            );
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    let (x, y) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                    if x < 0 || y < 0 || x as usize >= w || y as usize >= h {
                        return;
                    }
                    let p = &mut px[(y as usize * w + x as usize) * 3..][..3];
                    for k in 0..3 {
                        p[k] = (f32::from(p[k]) * (1.0 - cov) + f32::from(fg[k]) * cov) as u8;
                    }
                });
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&px).unwrap();
    }
    out
}
