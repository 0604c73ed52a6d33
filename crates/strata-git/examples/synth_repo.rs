//! Creates a large synthetic image-stack repository for benchmarks.
//!
//! ```text
//! cargo run --release -p strata-git --example synth_repo -- DIR [--images N] [--files N] [--no-checkout]
//! ```
//!
//! `DIR` must not exist yet. The repository gets `images/` with N images
//! (default 300) forming a tree (four roots `FROM scratch`, every other image
//! built on an earlier one), about `--files` files in total (default 40000)
//! spread over nested folders, and an `images/spec.yml` describing the tree.
//! That is the first commit. The second commit modifies 50 files spread over
//! a dozen images and renames five (one of them from one image into another).
//!
//! Everything is written through one `git fast-import` stream, so generation
//! takes seconds. The two commit hashes are printed on stdout as
//! `BASE=<sha>` and `HEAD=<sha>`.

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROOTS: usize = 4;
const FILES_PER_DIR: usize = 12;

struct Options {
    dir: PathBuf,
    images: usize,
    files: usize,
    checkout: bool,
}

fn parse_args() -> Result<Options, String> {
    let usage = "usage: synth_repo DIR [--images N] [--files N] [--no-checkout]";
    let mut dir = None;
    let mut images = 300;
    let mut files = 40_000;
    let mut checkout = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = args
                .next()
                .ok_or(format!("{name} needs a value\n{usage}"))?;
            value
                .parse()
                .map_err(|_| format!("{name} takes a whole number, not '{value}'\n{usage}"))
        };
        match arg.as_str() {
            "--images" => images = number("--images")?,
            "--files" => files = number("--files")?,
            "--no-checkout" => checkout = false,
            "-h" | "--help" => return Err(usage.to_owned()),
            _ if arg.starts_with('-') => return Err(format!("unknown option '{arg}'\n{usage}")),
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument '{arg}'\n{usage}")),
        }
    }
    let dir = dir.ok_or_else(|| usage.to_owned())?;
    if images < ROOTS + 1 {
        return Err(format!("--images must be at least {}", ROOTS + 1));
    }
    Ok(Options {
        dir,
        images,
        files,
        checkout,
    })
}

fn name(i: usize) -> String {
    format!("img-{i:03}")
}

fn parent(i: usize) -> Option<usize> {
    (i >= ROOTS).then(|| (i - ROOTS) / 3)
}

fn file_path(image: usize, n: usize) -> String {
    format!(
        "images/{}/files/d{:02}/f{:03}.txt",
        name(image),
        n / FILES_PER_DIR,
        n % FILES_PER_DIR
    )
}

fn dockerfile(i: usize) -> String {
    match parent(i) {
        Some(p) => format!(
            "ARG BASE_TAG=latest\nFROM example.org/bench/{}:${{BASE_TAG}}\nCOPY files /opt/{}\n",
            name(p),
            name(i)
        ),
        None => format!("FROM scratch\nCOPY files /opt/{}\n", name(i)),
    }
}

fn spec(images: usize) -> String {
    let mut s = String::from("images:\n");
    for i in 0..images {
        let _ = writeln!(s, "  {}:", name(i));
        let _ = writeln!(s, "    image_name: example.org/bench/{}", name(i));
        if let Some(p) = parent(i) {
            let _ = writeln!(s, "    depend_on: {}", name(p));
        }
    }
    s.push_str("tag:\n  prefix: \"2024.1\"\n");
    s
}

/// Appends a `data` command with its payload.
fn data(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

fn file(out: &mut Vec<u8>, path: &str, content: &str) {
    out.extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
    data(out, content.as_bytes());
}

fn commit_header(out: &mut Vec<u8>, mark: u32, time: u64, message: &str) {
    out.extend_from_slice(format!("commit refs/heads/main\nmark :{mark}\n").as_bytes());
    let who = format!("Bench <bench@example.org> {time} +0000");
    out.extend_from_slice(format!("author {who}\ncommitter {who}\n").as_bytes());
    data(out, message.as_bytes());
}

fn stream(opts: &Options) -> (Vec<u8>, usize) {
    let per_image = (opts.files.saturating_sub(opts.images * 2) / opts.images).max(1);
    let mut out = Vec::with_capacity(opts.files * 120);
    let mut total = 0;

    commit_header(&mut out, 1, 1_700_000_000, "Synthetic image stack\n");
    file(&mut out, "images/spec.yml", &spec(opts.images));
    file(&mut out, "README.md", "# synthetic benchmark repository\n");
    file(
        &mut out,
        "images/tests_common/conftest.py",
        "# shared test helpers\n",
    );
    total += 3;
    for i in 0..opts.images {
        file(
            &mut out,
            &format!("images/{}/Dockerfile", name(i)),
            &dockerfile(i),
        );
        file(
            &mut out,
            &format!("images/{}/tests/test_{}.py", name(i), i),
            &format!("def test_{i}():\n    assert True\n"),
        );
        total += 2;
        for n in 0..per_image {
            let path = file_path(i, n);
            file(&mut out, &path, &format!("{path}\nline two of {n}\n"));
            total += 1;
        }
    }

    // Second commit: 50 modifications over 12 images, 5 renames.
    out.extend_from_slice(b"\n");
    commit_header(&mut out, 2, 1_700_003_600, "Touch some images\n");
    out.extend_from_slice(b"from :1\n");
    let touched = 12.min(opts.images);
    let step = opts.images / touched;
    for k in 0..50 {
        let image = (k % touched) * step;
        let n = (k * 7) % per_image;
        let path = file_path(image, n);
        file(
            &mut out,
            &path,
            &format!("{path}\nmodified in commit two\n"),
        );
    }
    for k in 0..4 {
        let image = (k * 37 + 5) % opts.images;
        let n = (per_image - 1).min(k + 1);
        let from = file_path(image, n);
        let to = format!("images/{}/files/renamed-{k}.txt", name(image));
        out.extend_from_slice(format!("R {from} {to}\n").as_bytes());
    }
    // One file moved out of one image into another.
    let from = file_path(opts.images - 1, 0);
    let to = format!("images/{}/files/moved-in.txt", name(opts.images - 2));
    out.extend_from_slice(format!("R {from} {to}\n").as_bytes());
    out.extend_from_slice(b"\n");
    (out, total)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Box<dyn Error>> {
    let out = Command::new("git").args(args).current_dir(dir).output()?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn main() -> Result<(), Box<dyn Error>> {
    let opts = parse_args().map_err(|e| -> Box<dyn Error> { e.into() })?;
    if opts.dir.exists() {
        return Err(format!(
            "'{}' already exists: give a new directory",
            opts.dir.display()
        )
        .into());
    }
    std::fs::create_dir_all(&opts.dir)?;
    git(&opts.dir, &["init", "-q", "-b", "main"])?;

    let (bytes, total) = stream(&opts);
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&opts.dir)
        .stdin(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("could not write to git fast-import")?
        .write_all(&bytes)?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("git fast-import failed: {status}").into());
    }
    if opts.checkout {
        git(&opts.dir, &["reset", "-q", "--hard", "main"])?;
    }
    let base = git(&opts.dir, &["rev-parse", "main~1"])?;
    let head = git(&opts.dir, &["rev-parse", "main"])?;
    eprintln!(
        "{}: {} images, {total} files in the first commit",
        opts.dir.display(),
        opts.images
    );
    println!("BASE={base}");
    println!("HEAD={head}");
    Ok(())
}
