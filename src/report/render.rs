//! A chart's data drawn as an SVG element for the page, or as a PNG file.
use super::chart::{draw, Chart, HEIGHT, WIDTH};
use plotters::prelude::*;
use std::sync::Once;

/// The one font the bitmap backend draws text with (and plotters measures labels with), in the
/// binary so that a machine without fonts still draws labelled PNGs. DejaVu Sans, Bitstream Vera
/// licence (assets/fonts/LICENSE-DejaVu.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid font: a failure here is a broken build, seen by every test.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// The chart as an `<svg>` element with the id `chart-<id>`.
pub fn svg(c: &Chart) -> Result<String, String> {
    fonts();
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, c)?;
    }
    let attrs = format!(
        "<svg id=\"chart-{}\" role=\"img\" aria-label=\"{}\" ",
        c.id,
        super::page::escape(&c.title)
    );
    Ok(s.replacen("<svg ", &attrs, 1))
}

/// The chart as a PNG file's bytes.
pub fn png(c: &Chart) -> Result<Vec<u8>, String> {
    fonts();
    let (w, h) = (WIDTH, HEIGHT);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root, c)?;
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| e.to_string())?;
        wr.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
