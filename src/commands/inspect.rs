//! `pyslip inspect REF|LAYOUT-DIR`: per layer, who made it (the base, or which pyslip step and
//! from which cache-key inputs), what it holds (packages, file count, sizes), and what refers to
//! the image (SBOMs).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use layers::Digest;
use pyslip_registry::{Client, ClientConfig, Platform, Reference};
use pyslip_sbom::{ImageContents, LayerInfo};
use serde_json::{Value, json};

use crate::cache::Cache;
use crate::cli::InspectArgs;
use crate::commands::UserError;
use crate::commands::report::human_size;

mod layout;
mod source;

use source::Inspected;

/// Annotation on a layer descriptor naming the pyslip step that made it.
pub const ORIGIN_ANNOTATION: &str = "dev.pyslip.layer.origin";
/// Annotation on a layer descriptor with the cache-key inputs of the layer (a JSON object).
pub const INPUTS_ANNOTATION: &str = "dev.pyslip.layer.inputs";

/// pyslip's history lines and the layer origin each names.
const HISTORY_ORIGINS: &[(&str, &str)] = &[
    ("pyslip dependencies:", "deps"),
    ("pyslip project:", "project"),
    ("pyslip collectstatic:", "static"),
    ("pyslip: COPY", "app"),
];

/// Run `pyslip inspect`.
pub fn run(args: InspectArgs) -> Result<()> {
    let platform = match &args.platform {
        Some(p) => Platform::parse(p).with_context(|| format!("--platform {p}"))?,
        None => Platform::host(),
    };
    let cache = Cache::open_default()?;
    let inspected = match layout::split_target(&args.target) {
        Some((dir, name)) => layout::read(&dir, name.as_deref(), &platform)?,
        None => {
            let reference = Reference::parse(&args.target).map_err(|err| {
                anyhow::Error::new(UserError::new(
                    format!(
                        "{}: neither an OCI layout directory nor an image reference ({err})",
                        args.target
                    ),
                    "give REGISTRY/REPOSITORY:TAG, or a directory written by --oci-layout",
                ))
            })?;
            let client = Client::new(ClientConfig {
                insecure_registries: args.insecure_registries.clone(),
                blob_cache: Some(cache.blobs_dir()),
                ..ClientConfig::default()
            })?;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(source::from_registry(
                    &client, &cache, &reference, &platform,
                ))?
        }
    };
    let layers: Vec<(LayerInfo, PathBuf)> = inspected
        .layers
        .iter()
        .map(|l| (l.info.clone(), l.path.clone()))
        .collect();
    let contents = ImageContents::read(layers).context("reading the image's layers")?;
    let report = report(&inspected, &contents);
    if args.json {
        super::print_stdout(&format!("{report}\n"))
    } else {
        super::print_stdout(&render(&report))
    }
}

/// The origin of a layer: its annotation, else its history line, else `base` below pyslip's
/// first layer and `other` above it.
pub fn origin_of(
    annotation: Option<&str>,
    created_by: Option<&str>,
    comment: Option<&str>,
) -> String {
    if let Some(origin) = annotation {
        return origin.to_owned();
    }
    let by_history = created_by.and_then(|c| {
        HISTORY_ORIGINS
            .iter()
            .find(|(prefix, _)| c.starts_with(prefix))
            .map(|(_, origin)| (*origin).to_owned())
    });
    match (by_history, comment) {
        (Some(origin), _) => origin,
        (None, Some("pyslip")) => "pyslip".to_owned(),
        (None, _) => "base".to_owned(),
    }
}

fn packages_of(contents: &ImageContents, index: usize) -> Vec<Value> {
    let namespace = contents.distro.as_ref().map_or("debian", |d| d.id.as_str());
    let qualifier = contents.distro.as_ref().and_then(|d| d.qualifier());
    let python = contents
        .python_packages()
        .filter(|d| d.layer == index)
        .map(|d| {
            json!({
                "type": "pypi",
                "name": d.name,
                "version": d.version,
                "purl": pyslip_sbom::inventory::pypi_purl(&d.name, &d.version),
            })
        });
    let debs = contents.debs.iter().filter(|p| p.layer == index).map(|p| {
        json!({
            "type": "deb",
            "name": p.name,
            "version": p.version,
            "purl": pyslip_sbom::inventory::deb_purl(namespace, &p.name, &p.version, &p.arch, qualifier.as_deref()),
        })
    });
    python.chain(debs).collect()
}

fn report(inspected: &Inspected, contents: &ImageContents) -> Value {
    let layers: Vec<Value> = inspected
        .layers
        .iter()
        .zip(&contents.layers)
        .enumerate()
        .map(|(i, (l, (_, counts)))| {
            json!({
                "index": i,
                "digest": l.info.digest.to_string(),
                "media_type": l.info.media_type,
                "size": l.info.size,
                "origin": l.info.origin,
                "created_by": l.info.created_by,
                "files": counts.files,
                "content_bytes": counts.content_bytes,
                "whiteouts": counts.whiteouts,
                "packages": packages_of(contents, i),
                "inputs": l.inputs,
            })
        })
        .collect();
    json!({
        "source": inspected.source,
        "digest": inspected.digest.to_string(),
        "platform": inspected.platform,
        "distro": contents.distro.as_ref().and_then(|d| d.pretty_name.clone()),
        "size": inspected.layers.iter().map(|l| l.info.size).sum::<u64>(),
        "layers": layers,
        "referrers": inspected.referrers,
    })
}

/// The human table.
fn render(report: &Value) -> String {
    let mut out = format!(
        "image    {}@{}\nplatform {}{}\n\n",
        report["source"].as_str().unwrap_or_default(),
        report["digest"].as_str().unwrap_or_default(),
        report["platform"].as_str().unwrap_or_default(),
        report["distro"]
            .as_str()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
    );
    out.push_str(&format!(
        "{:<3} {:<8} {:<19} {:>10} {:>7} {:>10}  {}\n",
        "#", "ORIGIN", "DIGEST", "SIZE", "FILES", "CONTENT", "PACKAGES"
    ));
    for layer in report["layers"].as_array().into_iter().flatten() {
        let digest = layer["digest"].as_str().unwrap_or_default();
        let short = digest.get(..19).unwrap_or(digest);
        out.push_str(&format!(
            "{:<3} {:<8} {:<19} {:>10} {:>7} {:>10}  {}\n",
            layer["index"].as_u64().unwrap_or(0),
            layer["origin"].as_str().unwrap_or_default(),
            short,
            human_size(layer["size"].as_u64().unwrap_or(0)),
            layer["files"].as_u64().unwrap_or(0),
            human_size(layer["content_bytes"].as_u64().unwrap_or(0)),
            package_summary(&layer["packages"]),
        ));
        if layer["origin"] != "base" {
            if let Some(by) = layer["created_by"].as_str() {
                out.push_str(&format!("    made by: {by}\n"));
            }
            match layer["inputs"].as_object() {
                Some(inputs) => out.push_str(&format!("    key inputs: {}\n", inputs_line(inputs))),
                None if layer["origin"] == "app" => {
                    out.push_str("    key inputs: none (not cached: written from the project files every build)\n")
                }
                None => out.push_str("    key inputs: not recorded in this image\n"),
            }
        }
    }
    let referrers = report["referrers"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if !referrers.is_empty() {
        out.push('\n');
    }
    for r in referrers {
        out.push_str(&format!(
            "referrer {} {} ({})\n",
            r["digest"].as_str().unwrap_or_default(),
            r["artifact_type"].as_str().unwrap_or("?"),
            r["via"].as_str().unwrap_or_default(),
        ));
    }
    out
}

/// `7 python: blinker 1.9.0, click 8.5.1, …` / `95 deb: …`.
fn package_summary(packages: &Value) -> String {
    let list = packages.as_array().map_or(&[][..], Vec::as_slice);
    if list.is_empty() {
        return "-".to_owned();
    }
    let mut parts = Vec::new();
    for kind in ["pypi", "deb"] {
        let of_kind: Vec<String> = list
            .iter()
            .filter(|p| p["type"] == kind)
            .map(|p| {
                format!(
                    "{} {}",
                    p["name"].as_str().unwrap_or_default(),
                    p["version"].as_str().unwrap_or_default()
                )
            })
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let shown: Vec<&str> = of_kind.iter().take(6).map(String::as_str).collect();
        let more = if of_kind.len() > 6 { ", …" } else { "" };
        parts.push(format!(
            "{} {kind}: {}{more}",
            of_kind.len(),
            shown.join(", ")
        ));
    }
    parts.join("; ")
}

/// `uv.lock sha256:0123…, python 3.13, …` from the recorded inputs.
fn inputs_line(inputs: &serde_json::Map<String, Value>) -> String {
    inputs
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k} {s}"),
            Value::Object(files) => files
                .iter()
                .map(|(f, d)| format!("{f} {}", d.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", "),
            other => format!("{k} {other}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A digest from a JSON string, or an error naming what held it.
fn digest_of(value: &Value, what: &str) -> Result<Digest> {
    let text = value.as_str().unwrap_or_default();
    Digest::parse(text).with_context(|| format!("{what}: {text:?} is not a sha256 digest"))
}

/// The file at `path`, or an error that says the layout is incomplete.
fn read_blob(path: &Path, digest: &Digest) -> Result<Vec<u8>> {
    let bytes = fs_err::read(path)?;
    if &Digest::of(&bytes) != digest {
        bail!(
            "{} does not hash to {digest}: the layout is damaged",
            path.display()
        );
    }
    Ok(bytes)
}
