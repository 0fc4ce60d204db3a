//! The bench chart: a PNG of Tessera's speedup over NumPy and CuPy per workload, from the rows
//! of one `tessera bench` run. Bars and axes are drawn with plotters; labels are rasterized
//! with ab_glyph from a font compiled into the binary, so no system font is needed.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

const W: u32 = 960;
const H: u32 = 540;
const LEFT: i32 = 80;
const RIGHT: i32 = 30;
const TOP: i32 = 70;
const BOTTOM: i32 = 110;
const NUMPY: RGBColor = RGBColor(66, 114, 196);
const CUPY: RGBColor = RGBColor(112, 173, 71);

/// One group of bars: a workload label and its speedups (reference time / Tessera time).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Workload and size, e.g. "pi 1e8".
    pub label: String,
    /// Speedup over NumPy.
    pub vs_numpy: Option<f64>,
    /// Speedup over CuPy.
    pub vs_cupy: Option<f64>,
}

/// The groups of a results document (`bench::report`'s JSON).
pub fn groups(doc: &Value) -> Vec<Group> {
    let rows = doc["rows"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .map(|r| {
            let t = r["tessera_s"].as_f64().filter(|&t| t > 0.0);
            let ratio = |k: &str| Some(r[k].as_f64()? / t?).filter(|v| v.is_finite());
            Group {
                label: format!(
                    "{} {}",
                    r["workload"].as_str().unwrap_or("?"),
                    short_count(r["size"].as_f64().unwrap_or(0.0))
                ),
                vs_numpy: ratio("numpy_s"),
                vs_cupy: ratio("cupy_s"),
            }
        })
        .collect()
}

fn short_count(n: f64) -> String {
    if n >= 1e6 && n.log10().fract() == 0.0 {
        format!("1e{}", n.log10() as i32)
    } else if n >= 1e6 {
        format!(
            "{:.1}e{}",
            n / 10f64.powi(n.log10() as i32),
            n.log10() as i32
        )
    } else {
        format!("{n}")
    }
}

/// A "nice" axis maximum at or above `v`, and its tick step.
fn axis(v: f64) -> (f64, f64) {
    let v = v.max(1.0) * 1.1;
    let mag = 10f64.powf(v.log10().floor());
    for (m, step) in [(1.0, 0.2), (2.0, 0.5), (2.5, 0.5), (5.0, 1.0), (10.0, 2.0)] {
        if m * mag >= v {
            return (m * mag, step * mag);
        }
    }
    (v, v / 5.0)
}

/// Draws the chart of `groups` into an RGB buffer of `W` × `H` pixels.
///
/// # Errors
/// A drawing failure, as text.
pub fn render(groups: &[Group], title: &str) -> Result<Vec<u8>, String> {
    let mut buf = vec![255u8; (W * H * 3) as usize];
    let max = groups
        .iter()
        .flat_map(|g| [g.vs_numpy, g.vs_cupy])
        .flatten()
        .fold(1.0f64, f64::max);
    let (top, step) = axis(max);
    let (x0, x1, y0, y1) = (LEFT, W as i32 - RIGHT, TOP, H as i32 - BOTTOM);
    let y_of = |v: f64| y1 - ((v / top) * (y1 - y0) as f64).round() as i32;
    let mut labels: Vec<(i32, i32, f32, String, Align)> = Vec::new();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let grid = RGBColor(225, 225, 225);
        let mut tick = 0.0;
        while tick <= top + 1e-9 {
            let y = y_of(tick);
            root.draw(&PathElement::new(vec![(x0, y), (x1, y)], grid))
                .map_err(e)?;
            labels.push((x0 - 8, y, 14.0, format!("{tick:.1}x"), Align::Right));
            tick += step;
        }
        let ny = y_of(1.0);
        root.draw(&PathElement::new(
            vec![(x0, ny), (x1, ny)],
            ShapeStyle::from(&RED).stroke_width(2),
        ))
        .map_err(e)?;
        labels.push((x1, ny - 10, 13.0, "1x = same speed".into(), Align::Right));
        root.draw(&PathElement::new(vec![(x0, y0), (x0, y1), (x1, y1)], BLACK))
            .map_err(e)?;
        let slot = (x1 - x0) / groups.len().max(1) as i32;
        for (i, g) in groups.iter().enumerate() {
            let gx = x0 + i as i32 * slot;
            let bw = (slot / 3).min(70);
            let bars = [(g.vs_numpy, NUMPY), (g.vs_cupy, CUPY)];
            let present = bars.iter().filter(|b| b.0.is_some()).count().max(1) as i32;
            let mut bx = gx + (slot - present * bw) / 2;
            for (v, color) in bars {
                let Some(v) = v else { continue };
                let yb = y_of(v.min(top));
                root.draw(&Rectangle::new([(bx, yb), (bx + bw, y1)], color.filled()))
                    .map_err(e)?;
                labels.push((
                    bx + bw / 2,
                    yb - 12,
                    14.0,
                    format!("{v:.2}x"),
                    Align::Center,
                ));
                bx += bw;
            }
            labels.push((gx + slot / 2, y1 + 18, 15.0, g.label.clone(), Align::Center));
        }
        // Legend.
        let cupy_ran = groups.iter().any(|g| g.vs_cupy.is_some());
        let cupy = if cupy_ran {
            "vs CuPy"
        } else {
            "vs CuPy (not run)"
        };
        for (k, (name, color)) in [("vs NumPy", NUMPY), (cupy, CUPY)].iter().enumerate() {
            let lx = x0 + 10 + k as i32 * 140;
            let ly = H as i32 - 40;
            root.draw(&Rectangle::new(
                [(lx, ly - 8), (lx + 16, ly + 8)],
                color.filled(),
            ))
            .map_err(e)?;
            labels.push((lx + 24, ly, 15.0, (*name).into(), Align::Left));
        }
        root.present().map_err(e)?;
    }
    labels.push((W as i32 / 2, 30, 20.0, title.to_string(), Align::Center));
    let font = FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT)
        .map_err(|e| format!("font: {e}"))?;
    for (x, y, size, text, align) in labels {
        draw_text(&mut buf, &font, x, y, size, &text, align);
    }
    Ok(buf)
}

/// Writes the chart of `doc` (the bench JSON) as a PNG.
///
/// # Errors
/// Drawing or file errors, as text.
pub fn write_png(doc: &Value, title: &str, path: &Path) -> Result<(), String> {
    let buf = render(&groups(doc), title)?;
    image::save_buffer(path, &buf, W, H, image::ColorType::Rgb8)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Center,
    Right,
}

/// Rasterizes `text` with its vertical middle at `y`, blending black over the buffer.
fn draw_text(buf: &mut [u8], font: &FontRef, x: i32, y: i32, size: f32, text: &str, a: Align) {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut width = 0.0f32;
    let mut prev = None;
    let ids: Vec<_> = text.chars().map(|c| font.glyph_id(c)).collect();
    for &id in &ids {
        if let Some(p) = prev {
            width += scaled.kern(p, id);
        }
        width += scaled.h_advance(id);
        prev = Some(id);
    }
    let mut pen = match a {
        Align::Left => x as f32,
        Align::Center => x as f32 - width / 2.0,
        Align::Right => x as f32 - width,
    };
    let baseline = y as f32 + (scaled.ascent() + scaled.descent()) / 2.0;
    prev = None;
    for id in ids {
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, baseline));
        pen += scaled.h_advance(id);
        prev = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, cov| {
            let px = b.min.x as i32 + gx as i32;
            let py = b.min.y as i32 + gy as i32;
            if px < 0 || py < 0 || px >= W as i32 || py >= H as i32 {
                return;
            }
            let i = 3 * (py as usize * W as usize + px as usize);
            for c in &mut buf[i..i + 3] {
                *c = (*c as f32 * (1.0 - cov.min(1.0))).round() as u8;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_take_ratios_from_the_results() {
        let doc = json!({"rows": [
            {"workload": "pi", "size": 1e8, "tessera_s": 0.5, "numpy_s": 2.0, "cupy_s": null},
            {"workload": "sgemm", "size": 4000, "tessera_s": 1.0, "numpy_s": 0.5, "cupy_s": 0.01},
        ]});
        let g = groups(&doc);
        assert_eq!(g[0].label, "pi 1e8");
        assert_eq!(g[0].vs_numpy, Some(4.0));
        assert_eq!(g[0].vs_cupy, None);
        assert_eq!(g[1].vs_numpy, Some(0.5));
        assert_eq!(g[1].vs_cupy, Some(0.01));
    }

    #[test]
    fn chart_draws_bars_and_text() {
        let g = vec![
            Group {
                label: "pi 1e8".into(),
                vs_numpy: Some(4.0),
                vs_cupy: None,
            },
            Group {
                label: "add_mul 2e8".into(),
                vs_numpy: Some(2.0),
                vs_cupy: Some(0.1),
            },
        ];
        let buf = render(&g, "title").unwrap();
        let count = |c: RGBColor| {
            buf.chunks(3)
                .filter(|p| p == &[c.0, c.1, c.2].as_slice())
                .count()
        };
        // Bars are drawn in proportion: the NumPy bars (4x and 2x) cover far more pixels than
        // the 0.1x CuPy bar.
        assert!(
            count(NUMPY) > 10 * count(CUPY).max(1),
            "{} {}",
            count(NUMPY),
            count(CUPY)
        );
        assert!(count(CUPY) > 0);
        // Text was rasterized: some dark gray, anti-aliased pixels exist.
        let gray = buf
            .chunks(3)
            .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 0 && p[0] < 200)
            .count();
        assert!(gray > 100, "{gray}");
        assert_eq!(axis(4.0), (5.0, 1.0));
    }
}
