//! Command-line definitions (clap derive structs only; behaviour lives in `commands`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// pyslip: build an OCI image from a Python app, without Docker, a daemon or root.
#[derive(Debug, Parser)]
#[command(name = "pyslip", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image and push it, or write it as an OCI layout or a tarball.
    Build(Box<BuildArgs>),
    /// Show what a build would do, and which file decided each value.
    Plan(PlanArgs),
    /// Show what each layer of an image (in a registry or an OCI layout) holds, and why.
    Inspect(InspectArgs),
}

/// Format of the `--sbom` document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
}

/// Which kind of process the image runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// An HTTP server listening on $PORT.
    Web,
    /// A background process: no port, no EXPOSE.
    Worker,
}

/// Where build steps (dependency install, collectstatic) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxMode {
    /// The namespace sandbox where this host allows it, else no namespaces (says which, once).
    Auto,
    /// Always the rootless namespace sandbox (fails where user namespaces are blocked).
    Namespaces,
    /// No namespaces: the installer runs on the host and installs for the base root; build
    /// steps then have only the isolation the job itself has (its container).
    None,
}

/// Which installer puts the dependencies into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Installer {
    /// uv (pinned, fetched and verified by pyslip).
    Uv,
    /// The base image's own pip.
    Pip,
}

/// Flags shared by `build` and `plan`: everything that changes the plan.
#[derive(Debug, Args)]
pub struct PlanFlags {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Python version (X.Y or X.Y.Z); overrides .python-version and friends.
    #[arg(long, value_name = "X.Y")]
    pub python: Option<String>,
    /// Exact base image; wins over --base-repo.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Repository the `<X.Y>-slim` base tag is taken from.
    #[arg(
        long,
        value_name = "REPO",
        env = "PYSLIP_BASE_REPO",
        default_value = "docker.io/library/python"
    )]
    pub base_repo: String,
    /// Start command, run as `/bin/sh -c 'exec <cmd>'` so $PORT expands at container start.
    #[arg(long, value_name = "STRING")]
    pub cmd: Option<String>,
    /// Port the server listens on (sets PORT and EXPOSE).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Extra environment variable for the image (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Web server or background worker.
    #[arg(long, value_enum)]
    pub workload: Option<Workload>,
    /// Installer for requirements.txt / PEP 621 / setup.py projects.
    #[arg(long, value_enum)]
    pub installer: Option<Installer>,
    /// User the container runs as (`root` to opt out of the unprivileged default).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

/// `pyslip build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Everything that decides the plan.
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Image reference to tag (repeatable); pushed with --push.
    #[arg(short = 't', long = "tag", value_name = "REF")]
    pub tags: Vec<String>,
    /// Push the image to the registry of every -t reference.
    #[arg(long)]
    pub push: bool,
    /// Write a tarball that `docker load` and `podman load` accept.
    #[arg(long, value_name = "FILE")]
    pub tar: Option<PathBuf>,
    /// Write (or add to) an OCI image layout directory.
    #[arg(long = "oci-layout", value_name = "DIR")]
    pub oci_layout: Option<PathBuf>,
    /// Target platform(s): OS/ARCH[/VARIANT], a comma list (one image each, under an index), or
    /// `all` (every linux platform of the base index); default: this machine's, e.g. linux/amd64.
    #[arg(long, value_name = "OS/ARCH[/VARIANT][,…]|all")]
    pub platform: Option<String>,
    /// Registry host to speak plain HTTP / unverified TLS to (repeatable; loopback is implied).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Print one JSON object on stdout instead of human output.
    #[arg(long)]
    pub json: bool,
    /// Ignore cached dependency layers and rebuild them.
    #[arg(long)]
    pub no_cache: bool,
    /// Registry-backed layer cache shared by CI runners: deps, project and static layers are
    /// looked up there on a local miss and published there (config `cache-repo`).
    #[arg(long, value_name = "REPO", env = "PYSLIP_CACHE_REPO")]
    pub cache_repo: Option<String>,
    /// Read hits from --cache-repo but never write to it (untrusted builds, e.g. fork PRs).
    #[arg(long, env = "PYSLIP_CACHE_REPO_READONLY")]
    pub cache_repo_readonly: bool,
    /// Use this uv binary instead of the pinned one pyslip fetches.
    #[arg(long, value_name = "PATH")]
    pub uv: Option<PathBuf>,
    /// Write the image's SBOM to FILE; with --push and --oci-layout it is also attached to the
    /// image as an OCI 1.1 referrer.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// Format of the --sbom document.
    #[arg(long, value_enum, default_value = "spdx", requires = "sbom")]
    pub sbom_format: SbomFormat,
    /// Where build steps run: the rootless namespace sandbox, or no namespaces (CI containers,
    /// hosts that forbid user namespaces); `auto` (the default) picks the sandbox where it works
    /// (config `sandbox`).
    #[arg(long, value_enum, env = "PYSLIP_SANDBOX")]
    pub sandbox: Option<SandboxMode>,
    /// Boot check: start the image in the rootless sandbox (private network) before writing any
    /// output; fail when it cannot serve on $PORT (config `check = true`).
    #[arg(long)]
    pub check: bool,
    /// Path the boot check requests from a web app (default `/`; config `check-path`).
    #[arg(long, value_name = "PATH")]
    pub check_path: Option<String>,
    /// Seconds a web app gets to listen and answer in the boot check (default 30).
    #[arg(long, value_name = "SECS")]
    pub check_timeout: Option<u64>,
    /// Fail the boot check on an HTTP 5xx answer instead of warning.
    #[arg(long)]
    pub check_strict: bool,
    /// Skip the boot check even when the config asks for it.
    #[arg(long, conflicts_with_all = ["check", "check_path", "check_timeout", "check_strict"])]
    pub no_check: bool,
}

/// `pyslip inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image reference (REGISTRY/REPOSITORY:TAG or @sha256:…) or an OCI layout directory
    /// (DIR, or DIR:NAME when it holds several images).
    #[arg(value_name = "REF|LAYOUT-DIR")]
    pub target: String,
    /// Platform to pick from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT][,…]|all")]
    pub platform: Option<String>,
    /// Registry host to speak plain HTTP / unverified TLS to (repeatable; loopback is implied).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pyslip plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Everything that decides the plan.
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Ask the package index which Pythons the pinned packages have wheels for, as the build
    /// does, and show the Python the build would choose.
    #[arg(long)]
    pub online: bool,
    /// With --online: the target platform (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", requires = "online")]
    pub platform: Option<String>,
}

impl SandboxMode {
    /// `--sandbox` (or `PYSLIP_SANDBOX`) over the configuration's `sandbox`, else `auto`.
    pub fn of(args: &BuildArgs, plan: &pyslip_plan::BuildPlan) -> Self {
        args.sandbox
            .or_else(|| {
                let value = &plan.sandbox.as_ref()?.value;
                <Self as ValueEnum>::from_str(value, false).ok()
            })
            .unwrap_or(SandboxMode::Auto)
    }
}
