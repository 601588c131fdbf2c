//! The page as one HTML file: inline CSS, charts as inline SVG, no script, and a content
//! policy that forbids every fetch, so the file reads the same offline and in ten years.
use super::page::{escape, Block, Page, Table};
use super::render;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1600px;padding:0 16px;color:#222}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:16px;margin:18px 0 6px}\
.meta{color:#666;font-size:13px}\
figure{display:inline-block;vertical-align:top;margin:6px 10px 12px 0;border:1px solid #e4e4e4;padding:4px;break-inside:avoid}\
figure svg{display:block;max-width:100%;height:auto}figcaption{font-size:12px;color:#555;max-width:760px}\
table{border-collapse:collapse;font-size:13px;margin:6px 14px 14px 0;display:inline-table;vertical-align:top;break-inside:avoid}\
caption{text-align:left;font-weight:600;padding:2px 0 4px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}td.t{text-align:left;max-width:520px;word-break:break-word}\
.verdict{font-weight:600;padding:6px 10px;margin:8px 0;border-radius:3px}.pass{background:#e3f4e3;color:#17631a}.fail{background:#fbe3e3;color:#9b1c1c}\
@media print{body{margin:0;max-width:none}figure{border:none}h2{break-after:avoid}}";

pub fn page(p: &Page, subtitle: &str) -> Result<String, String> {
    let mut out = String::with_capacity(256 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<title>{}</title>\n<style>{STYLE}</style></head><body>\n",
        escape(&p.title)
    ));
    out.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"meta\">{}</p>\n",
        escape(&p.title),
        escape(subtitle)
    ));
    for b in &p.blocks {
        match b {
            Block::Heading(level, s) => {
                let l = (*level).clamp(2, 4);
                out.push_str(&format!("<h{l}>{}</h{l}>\n", escape(s)));
            }
            Block::Text(s) => out.push_str(&format!("<p>{}</p>\n", escape(s))),
            Block::Verdict { pass, line } => out.push_str(&format!(
                "<p class=\"verdict {}\">{}</p>\n",
                if *pass { "pass" } else { "fail" },
                escape(line)
            )),
            Block::Table(t) => table(&mut out, t),
            Block::Chart(c) => {
                out.push_str(&format!("<figure id=\"fig-{}\">", c.id));
                out.push_str(&render::svg(c)?);
                if let Some(n) = &c.note {
                    out.push_str(&format!("<figcaption>{}</figcaption>", escape(n)));
                }
                out.push_str("</figure>\n");
            }
        }
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

fn table(out: &mut String, t: &Table) {
    out.push_str(&format!(
        "<table id=\"table-{}\"><caption>{}</caption><thead><tr>",
        t.id,
        escape(&t.caption)
    ));
    for h in &t.head {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let numeric =
                c.parse::<f64>().is_ok() || c == "-" || c.ends_with('x') || c.ends_with(" +");
            if i == 0 || numeric {
                out.push_str(&format!("<td>{}</td>", escape(c)));
            } else {
                out.push_str(&format!("<td class=\"t\">{}</td>", escape(c)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}
