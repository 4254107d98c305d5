//! CycloneDX 1.6 JSON: the project as `metadata.component`; the image (a `container` component)
//! with its layers as nested components; every package as a `library` with its purl, license,
//! hash and the layer holding it (`pyslip:layer` property); the project's dependencies.

use serde::Serialize;

use crate::inventory::{Inventory, Package, PackageKind};

/// The CycloneDX media type (the referrer's `artifactType`).
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<License>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(rename = "externalReferences", skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct License {
    expression: String,
}

#[derive(Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// A UUID-shaped serial number derived from the image digest (version nibble 8: custom, per
/// RFC 9562), so the same image always gets the same serial.
pub fn serial_number(inv: &Inventory) -> String {
    let hex = inv.image.digest.hex();
    let h = |range: std::ops::Range<usize>| hex.get(range).unwrap_or("0");
    let variant = match h(16..17) {
        "0" | "1" | "2" | "3" | "c" | "d" | "e" | "f" => "8",
        other => other,
    };
    format!(
        "urn:uuid:{}-{}-8{}-{variant}{}-{}",
        h(0..8),
        h(8..12),
        h(13..16),
        h(17..20),
        h(20..32)
    )
}

/// One `bom-ref` per package: its purl, made unique (`#2`) when a package is installed twice.
fn bom_refs(packages: &[Package]) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    packages
        .iter()
        .map(|p| {
            let n = seen.entry(p.purl.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                p.purl.clone()
            } else {
                format!("{}#{n}", p.purl)
            }
        })
        .collect()
}

fn library(p: &Package, bom_ref: String, layer: String) -> Component {
    let mut properties = vec![Property {
        name: "pyslip:layer",
        value: layer,
    }];
    if let Some(detail) = &p.detail {
        let name = match p.kind {
            PackageKind::Python => "pyslip:metadata-path",
            PackageKind::Deb => "pyslip:deb-source",
        };
        properties.push(Property {
            name,
            value: detail.clone(),
        });
    }
    if let Some(file) = p.file.as_ref().and_then(|f| f.filename.clone()) {
        properties.push(Property {
            name: "pyslip:installed-from",
            value: file,
        });
    }
    Component {
        kind: "library",
        bom_ref: Some(bom_ref),
        name: p.name.clone(),
        version: Some(p.version.clone()),
        hashes: p
            .file
            .iter()
            .map(|f| Hash {
                alg: "SHA-256",
                content: f.sha256.clone(),
            })
            .collect(),
        licenses: p
            .license
            .iter()
            .map(|e| License {
                expression: e.clone(),
            })
            .collect(),
        purl: Some(p.purl.clone()),
        external_references: p
            .file
            .as_ref()
            .and_then(|f| f.url.clone())
            .map(|url| ExternalReference {
                kind: "distribution",
                url,
            })
            .into_iter()
            .collect(),
        properties,
        ..Component::default()
    }
}

/// The CycloneDX 1.6 JSON document, pretty-printed, with a final newline.
pub fn to_json(inv: &Inventory) -> Vec<u8> {
    let layer_digest = |i: usize| {
        inv.layers
            .get(i)
            .map(|l| l.digest.to_string())
            .unwrap_or_default()
    };
    let layers: Vec<Component> = inv
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| Component {
            kind: "data",
            bom_ref: Some(format!("layer:{}", l.digest)),
            name: format!("layer {i} ({})", l.origin),
            version: Some(l.digest.to_string()),
            description: l.created_by.as_ref().map(|c| format!("created by: {c}")),
            hashes: vec![Hash {
                alg: "SHA-256",
                content: l.digest.hex().to_owned(),
            }],
            ..Component::default()
        })
        .collect();
    let image = Component {
        kind: "container",
        bom_ref: Some(format!("image:{}", inv.image.digest)),
        name: format!("{} image", inv.project.name),
        version: Some(inv.image.digest.to_string()),
        description: inv
            .distro
            .as_ref()
            .map(|d| format!("base distribution: {d}")),
        hashes: vec![Hash {
            alg: "SHA-256",
            content: inv.image.digest.hex().to_owned(),
        }],
        properties: vec![Property {
            name: "pyslip:platform",
            value: inv.image.platform.clone(),
        }],
        components: layers,
        ..Component::default()
    };
    let project_ref = "project".to_owned();
    let project = Component {
        kind: "application",
        bom_ref: Some(project_ref.clone()),
        name: inv.project.name.clone(),
        version: inv.project.version.clone(),
        licenses: inv
            .project
            .license
            .iter()
            .map(|e| License {
                expression: e.clone(),
            })
            .collect(),
        properties: inv
            .project
            .layers
            .iter()
            .map(|i| Property {
                name: "pyslip:layer",
                value: layer_digest(*i),
            })
            .collect(),
        ..Component::default()
    };
    let refs = bom_refs(&inv.packages);
    let mut components = vec![image];
    components.extend(
        inv.packages
            .iter()
            .zip(&refs)
            .map(|(p, r)| library(p, r.clone(), layer_digest(p.layer))),
    );
    let deps: Vec<&Package> = inv.project_dependencies().collect();
    let mut depends_on: Vec<String> = inv
        .packages
        .iter()
        .zip(&refs)
        .filter(|(p, _)| deps.iter().any(|d| std::ptr::eq(*d, *p)))
        .map(|(_, r)| r.clone())
        .collect();
    depends_on.sort();
    depends_on.dedup();
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: serial_number(inv),
        version: 1,
        metadata: Metadata {
            timestamp: inv.created.clone(),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "pyslip".to_owned(),
                    version: inv.tool.strip_prefix("pyslip-").map(str::to_owned),
                    ..Component::default()
                }],
            },
            component: project,
        },
        components,
        dependencies: vec![Dependency {
            reference: project_ref,
            depends_on,
        }],
    };
    let mut bytes = serde_json::to_vec_pretty(&bom).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
