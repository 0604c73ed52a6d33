//! Tests against a real `docker-registry` on loopback (see
//! `strata_registry::testing`), with a fault-injecting proxy in front of it
//! where a fault is needed.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_core::reference::{ImageName, ImageRef};
use strata_registry::manifest::{self, Manifest};
use strata_registry::testing::{
    Family, TestRegistry, push_image, push_tagged_image, push_tagged_index, tagged,
};
use strata_registry::{Move, PromotionError, Registry, RegistryError};
use support::{Action, Proxy, Resp, client};

fn registry() -> TestRegistry {
    TestRegistry::start().expect("start docker-registry (scripts/setup.sh installs it)")
}

fn name_at(host: &str, repo: &str) -> ImageName {
    format!("{host}/{repo}").parse().unwrap()
}

async fn digest_of(c: &Registry, r: &ImageRef) -> Option<String> {
    c.get_manifest(r)
        .await
        .unwrap()
        .map(|m| m.digest().to_string())
}

#[tokio::test]
async fn manifests_by_tag_and_digest_in_both_families() {
    let reg = registry();
    let c = client();
    for (family, mt) in [
        (Family::Docker, manifest::DOCKER_MANIFEST),
        (Family::Oci, manifest::OCI_MANIFEST),
    ] {
        let name = reg.name("org/img");
        let r = tagged(&name, &format!("{family:?}").to_lowercase());
        assert_eq!(c.head_manifest(&r).await.unwrap(), None, "not there yet");
        assert!(c.get_manifest(&r).await.unwrap().is_none());

        let m = push_image(&c, &name, family, "one").await.unwrap();
        let put = c.put_manifest(&r, &m).await.unwrap();
        assert_eq!(&put, m.digest());

        let head = c.head_manifest(&r).await.unwrap().expect("head by tag");
        assert_eq!(&head.digest, m.digest());
        assert_eq!(head.media_type, mt);
        assert_eq!(head.size, m.size());

        let got = c.get_manifest(&r).await.unwrap().expect("get by tag");
        assert_eq!(got.bytes(), m.bytes(), "exact bytes kept");
        assert_eq!(got.media_type(), mt);

        let by_digest = name.with_digest(m.digest().clone());
        let got = c
            .get_manifest(&by_digest)
            .await
            .unwrap()
            .expect("get by digest");
        assert_eq!(got.digest(), m.digest());
        let head = c
            .head_manifest(&by_digest)
            .await
            .unwrap()
            .expect("head by digest");
        assert_eq!(&head.digest, m.digest());

        // Put by digest, then tag that.
        let m2 = push_image(&c, &name, family, "two").await.unwrap();
        let d2 = name.with_digest(m2.digest().clone());
        c.put_manifest(&d2, &m2).await.unwrap();
        assert_eq!(
            digest_of(&c, &d2).await.as_deref(),
            Some(m2.digest().as_str())
        );
        // A digest target that is not the manifest's digest is refused locally.
        let wrong = c.put_manifest(&by_digest, &m2).await.unwrap_err();
        assert!(
            matches!(wrong, RegistryError::DigestMismatch { .. }),
            "{wrong}"
        );
    }
}

#[tokio::test]
async fn copy_retags_exact_bytes_and_indexes_whole() {
    let reg = registry();
    let c = client();
    let name = reg.name("stack/base");
    for family in [Family::Docker, Family::Oci] {
        let src = tagged(&name, &format!("{family:?}-src").to_lowercase());
        let index = push_tagged_index(&c, &src, family, "idx").await.unwrap();
        assert!(index.is_index());
        let dst = tagged(&name, &format!("{family:?}-dst").to_lowercase());
        let copied = c.copy(&src, &dst).await.unwrap();
        assert_eq!(&copied.digest, index.digest());
        let got = c.get_manifest(&dst).await.unwrap().unwrap();
        assert_eq!(got.bytes(), index.bytes(), "index copied whole");
        assert_eq!(got.media_type(), index.media_type());

        // Into another repository of the same registry: blobs mounted, child
        // manifests copied by digest; same index digest.
        let other = tagged(
            &reg.name("stack/copy"),
            &format!("{family:?}").to_lowercase(),
        );
        let copied = c.copy(&src, &other).await.unwrap();
        assert_eq!(&copied.digest, index.digest());
        let got = c.get_manifest(&other).await.unwrap().unwrap();
        assert_eq!(got.digest(), index.digest());
        if let manifest::Contents::Index { manifests } = got.contents() {
            for child in manifests {
                let child_ref = other.name().with_digest(child.digest.clone());
                let cm = c
                    .get_manifest(&child_ref)
                    .await
                    .unwrap()
                    .expect("child copied");
                if let manifest::Contents::Image { config, layers } = cm.contents() {
                    assert!(c.blob_exists(other.name(), &config.digest).await.unwrap());
                    for l in layers {
                        assert!(c.blob_exists(other.name(), &l.digest).await.unwrap());
                    }
                } else {
                    panic!("child is not an image");
                }
            }
        } else {
            panic!("not an index");
        }
    }
    // Missing source and cross-registry copies are clear errors.
    let e = c
        .copy(&tagged(&name, "nope"), &tagged(&name, "x"))
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let far: ImageRef = "ghcr.io/org/img:x".parse().unwrap();
    let e = c
        .copy(&tagged(&name, "docker-src"), &far)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::CrossRegistry { .. }), "{e}");
}

#[tokio::test]
async fn tags_are_listed_across_pages() {
    let reg = registry();
    let c = client();
    let name = reg.name("org/tags");
    let m = push_image(&c, &name, Family::Oci, "t").await.unwrap();
    let mut want: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    for t in &want {
        c.put_manifest(&tagged(&name, t), &m).await.unwrap();
    }
    want.sort();

    let mut all = c.list_tags(&name).await.unwrap();
    all.sort();
    assert_eq!(all, want);
    assert_eq!(
        c.list_tags(&reg.name("org/none")).await.unwrap(),
        Vec::<String>::new()
    );

    // Debian's registry 2.8 ignores `n=` on tag lists, so a proxy pages the
    // real list the way registry 3 / ghcr do (n, last, Link: rel="next").
    let proxy = Proxy::start(reg.addr(), |req| {
        if !req.path().ends_with("/tags/list") {
            return Action::Forward;
        }
        let n: usize = req.query("n").and_then(|n| n.parse().ok()).unwrap_or(1000);
        let last = req.query("last");
        let path = req.path().to_string();
        Action::Transform(Box::new(move |mut resp: Resp| {
            let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            let mut tags: Vec<String> = serde_json::from_value(v["tags"].clone()).unwrap();
            tags.sort();
            let rest: Vec<String> = tags
                .into_iter()
                .filter(|t| last.as_ref().is_none_or(|l| t > l))
                .collect();
            let page: Vec<String> = rest.iter().take(n).cloned().collect();
            if rest.len() > n {
                let link = format!("<{path}?last={}&n={n}>; rel=\"next\"", page[page.len() - 1]);
                resp.set_header("Link", &link);
            }
            resp.body =
                serde_json::to_vec(&serde_json::json!({"name": v["name"], "tags": page})).unwrap();
            resp
        }))
    })
    .await;
    let pname = name_at(&proxy.host(), "org/tags");
    let paged = c.list_tags_paged(&pname, Some(3)).await.unwrap();
    assert_eq!(paged, want, "all pages, in order");
    assert_eq!(proxy.count("GET", "/tags/list"), 3, "{:?}", proxy.log());
}

/// A registry whose tag list links on forever, each page to a new one: the
/// listing stops at its page bound with an error naming the registry, it
/// does not loop.
#[tokio::test]
async fn a_tag_list_that_never_ends_stops_at_the_page_bound() {
    let reg = registry();
    let c = client();
    let next = Arc::new(AtomicUsize::new(0));
    let proxy = Proxy::start(reg.addr(), move |req| {
        if !req.path().ends_with("/tags/list") {
            return Action::Forward;
        }
        let page = next.fetch_add(1, Ordering::SeqCst);
        let link = format!("<{}?last=t{page}>; rel=\"next\"", req.path());
        let body = serde_json::json!({"name": "org/endless", "tags": [format!("t{page}")]});
        Action::Respond(Resp::new(
            200,
            &[("Content-Type", "application/json"), ("Link", &link)],
            serde_json::to_vec(&body).unwrap(),
        ))
    })
    .await;
    let name = name_at(&proxy.host(), "org/endless");
    let err = c.list_tags(&name).await.unwrap_err();
    assert!(matches!(err, RegistryError::BadResponse { .. }), "{err:?}");
    let said = err.to_string();
    assert!(said.contains(&proxy.host()), "{said}");
    assert!(
        said.contains(&format!("past {} pages", strata_registry::MAX_TAG_PAGES)),
        "{said}"
    );
    assert_eq!(
        proxy.count("GET", "/tags/list"),
        strata_registry::MAX_TAG_PAGES,
        "one request a page, up to the bound"
    );
}

#[tokio::test]
async fn altered_manifests_are_detected() {
    let reg = registry();
    let c = client();
    let name = reg.name("org/img");
    let src = tagged(&name, "src");
    let index = push_tagged_index(&c, &src, Family::Oci, "aaaa")
        .await
        .unwrap();
    let target = tagged(&name, "stable");
    let before = push_tagged_image(&c, &target, Family::Docker, "old")
        .await
        .unwrap();

    // The proxy changes `aaaa` to `bbbb` in manifest bodies: still valid
    // JSON, but not the bytes the registry's digest header names.
    let proxy = Proxy::start(reg.addr(), |req| {
        if req.method == "GET" && req.is_manifest() {
            Action::Transform(Box::new(|mut r: Resp| {
                let s = String::from_utf8_lossy(&r.body).replace("aaaa", "bbbb");
                r.body = s.into_bytes();
                r
            }))
        } else {
            Action::Forward
        }
    })
    .await;
    let pname = name_at(&proxy.host(), "org/img");
    let e = c.get_manifest(&tagged(&pname, "src")).await.unwrap_err();
    match &e {
        RegistryError::DigestMismatch {
            expected,
            expected_from,
            ..
        } => {
            assert_eq!(expected, index.digest().as_str());
            assert!(expected_from.contains("Docker-Content-Digest"), "{e}");
        }
        other => panic!("{other}"),
    }
    // By digest, too (the requested digest is checked first).
    let e = c
        .get_manifest(&pname.with_digest(index.digest().clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::DigestMismatch { ref expected_from, .. } if expected_from.contains("requested")),
        "{e}"
    );
    assert!(e.to_string().contains("nothing was changed"), "{e}");

    // A promotion through the corrupting proxy moves nothing.
    let e = c
        .promote(
            &[Move::new(tagged(&pname, "src"), tagged(&pname, "stable"))],
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, PromotionError::Sources { .. }), "{e}");
    assert_eq!(
        digest_of(&c, &target).await.as_deref(),
        Some(before.digest().as_str())
    );
}

#[tokio::test]
async fn malformed_answers_are_typed_errors() {
    let reg = registry();
    let c = client();
    let big = vec![b' '; manifest::MAX_MANIFEST_BYTES + 10];
    let proxy = Proxy::start(reg.addr(), move |req| {
        let path = req.path();
        if path.ends_with("/manifests/notjson") {
            Action::Respond(Resp::new(200, &[("Content-Type", manifest::OCI_MANIFEST)], "{not json"))
        } else if path.ends_with("/manifests/nomediatype") {
            Action::Respond(Resp::new(
                200,
                &[("Content-Type", manifest::DOCKER_MANIFEST)],
                r#"{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#,
            ))
        } else if path.ends_with("/manifests/huge") {
            Action::Respond(Resp::new(200, &[("Content-Type", manifest::OCI_MANIFEST)], big.clone()))
        } else if path.ends_with("/manifests/badheader") {
            Action::Respond(Resp::new(
                200,
                &[("Content-Type", manifest::OCI_MANIFEST), ("Docker-Content-Digest", "md5:xyz")],
                "{}",
            ))
        } else {
            Action::Forward
        }
    })
    .await;
    let n = name_at(&proxy.host(), "org/img");
    let e = c.get_manifest(&tagged(&n, "notjson")).await.unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::BadManifest {
                problem: manifest::ManifestError::NotJson(_),
                ..
            }
        ),
        "{e}"
    );
    let e = c
        .get_manifest(&tagged(&n, "nomediatype"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::BadManifest {
                problem: manifest::ManifestError::NoMediaType,
                ..
            }
        ),
        "{e}"
    );
    let e = c.get_manifest(&tagged(&n, "huge")).await.unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::BadManifest {
                problem: manifest::ManifestError::TooLarge(_),
                ..
            }
        ),
        "{e}"
    );
    let e = c.get_manifest(&tagged(&n, "badheader")).await.unwrap_err();
    assert!(matches!(e, RegistryError::BadHeader { .. }), "{e}");
    assert!(e.to_string().contains("Docker-Content-Digest"), "{e}");
}

#[tokio::test]
async fn transient_failures_are_retried_and_4xx_are_final() {
    let reg = registry();
    let c = client();
    let name = reg.name("org/img");
    let r = tagged(&name, "v1");
    let m = push_tagged_image(&c, &r, Family::Oci, "x").await.unwrap();

    // First GET: connection dropped; second: 503; third: forwarded.
    let gets = Arc::new(AtomicUsize::new(0));
    let puts = Arc::new(AtomicUsize::new(0));
    let (g, p) = (gets.clone(), puts.clone());
    let proxy = Proxy::start(reg.addr(), move |req| {
        if req.path().ends_with("/manifests/always-down") {
            Action::Respond(Resp::new(500, &[], "down"))
        } else if req.path().ends_with("/manifests/always-dropped") {
            Action::Drop
        } else if req.method == "GET" && req.is_manifest() {
            match g.fetch_add(1, Ordering::SeqCst) {
                0 => Action::Drop,
                1 => Action::Respond(Resp::new(503, &[], "busy")),
                _ => Action::Forward,
            }
        } else if req.method == "PUT" && req.is_manifest() {
            match p.fetch_add(1, Ordering::SeqCst) {
                0 => Action::Respond(Resp::new(429, &[("Retry-After", "0")], "slow down")),
                _ => Action::Forward,
            }
        } else {
            Action::Forward
        }
    })
    .await;
    let pn = name_at(&proxy.host(), "org/img");
    let got = c
        .get_manifest(&tagged(&pn, "v1"))
        .await
        .unwrap()
        .expect("after retries");
    assert_eq!(got.digest(), m.digest());
    assert_eq!(gets.load(Ordering::SeqCst), 3);

    c.put_manifest(&tagged(&pn, "v2"), &m).await.unwrap();
    assert_eq!(puts.load(Ordering::SeqCst), 2, "429 retried once");
    assert_eq!(
        digest_of(&c, &tagged(&name, "v2")).await.as_deref(),
        Some(m.digest().as_str())
    );

    // Bounded: a registry that keeps failing gives up after max_attempts.
    let e = c
        .head_manifest(&tagged(&pn, "always-down"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::Status { status: 500, .. }),
        "{e}"
    );
    assert_eq!(proxy.count("HEAD", "always-down"), 3);
    let e = c
        .get_manifest(&tagged(&pn, "always-dropped"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::Unreachable { attempts: 3, .. }),
        "{e}"
    );
    assert_eq!(proxy.count("GET", "always-dropped"), 3);

    // A 4xx is final: a manifest whose blobs the registry lacks.
    let other = reg.name("org/empty");
    let e = c
        .put_manifest(&tagged(&name_at(&proxy.host(), "org/empty"), "x"), &m)
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::Status { status: 400, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{e}");
    assert_eq!(
        proxy.count("PUT", "org/empty/manifests/x"),
        1,
        "not retried"
    );
    assert!(
        c.get_manifest(&tagged(&other, "x"))
            .await
            .unwrap()
            .is_none()
    );
}

struct Stack {
    sources: Vec<ImageRef>,
    targets: Vec<ImageRef>,
    source_digests: Vec<String>,
}

/// Three images at `2023.2-main` (an OCI index, a Docker image, an OCI
/// image); the first two already have a `2023.2-stable`, the third does not.
async fn stack(c: &Registry, reg: &TestRegistry) -> (Stack, Vec<Option<String>>) {
    let mut s = Stack {
        sources: vec![],
        targets: vec![],
        source_digests: vec![],
    };
    let mut old = vec![];
    for (i, repo) in ["stack/root", "stack/child", "stack/leaf"]
        .iter()
        .enumerate()
    {
        let n = reg.name(repo);
        let src = tagged(&n, "2023.2-main");
        let m = match i {
            0 => push_tagged_index(c, &src, Family::Oci, repo).await.unwrap(),
            1 => push_tagged_image(c, &src, Family::Docker, repo)
                .await
                .unwrap(),
            _ => push_tagged_image(c, &src, Family::Oci, repo).await.unwrap(),
        };
        let dst = tagged(&n, "2023.2-stable");
        if i < 2 {
            let o = push_tagged_image(c, &dst, Family::Docker, &format!("{repo}-old"))
                .await
                .unwrap();
            old.push(Some(o.digest().to_string()));
        } else {
            old.push(None);
        }
        s.sources.push(src);
        s.targets.push(dst);
        s.source_digests.push(m.digest().to_string());
    }
    (s, old)
}

fn moves(s: &Stack, host: Option<&str>) -> Vec<Move> {
    let re = |r: &ImageRef| -> ImageRef {
        match host {
            None => r.clone(),
            Some(h) => format!("{h}/{}:{}", r.name().repository(), r.tag().unwrap())
                .parse()
                .unwrap(),
        }
    };
    s.sources
        .iter()
        .zip(&s.targets)
        .map(|(a, b)| Move::new(re(a), re(b)))
        .collect()
}

#[tokio::test]
async fn promotion_moves_every_tag_to_the_source_digest() {
    let reg = registry();
    let c = client();
    let (s, old) = stack(&c, &reg).await;

    let dry = c.promote(&moves(&s, None), true).await.unwrap();
    assert!(dry.dry_run);
    for (i, m) in dry.moves.iter().enumerate() {
        assert_eq!(m.new_digest.as_str(), s.source_digests[i]);
        assert_eq!(m.old_digest.as_ref().map(|d| d.to_string()), old[i]);
        assert_eq!(
            digest_of(&c, &s.targets[i]).await,
            old[i],
            "dry run moved nothing"
        );
    }
    assert!(dry.moves[2].to_string().contains("(new)"));

    let report = c.promote(&moves(&s, None), false).await.unwrap();
    assert!(!report.dry_run);
    assert_eq!(report.moves.len(), 3);
    assert!(report.moves[0].media_type == manifest::OCI_INDEX);
    for (i, t) in s.targets.iter().enumerate() {
        assert_eq!(
            digest_of(&c, t).await.as_deref(),
            Some(s.source_digests[i].as_str()),
            "{t}"
        );
        assert_eq!(report.moves[i].new_digest.as_str(), s.source_digests[i]);
        assert!(!report.moves[i].unchanged());
    }
    // Promoting again changes nothing and says so.
    let again = c.promote(&moves(&s, None), false).await.unwrap();
    assert!(again.moves.iter().all(|m| m.unchanged()));
}

#[tokio::test]
async fn promotion_with_a_missing_source_moves_nothing() {
    let reg = registry();
    let c = client();
    let (s, old) = stack(&c, &reg).await;
    let mut mv = moves(&s, None);
    let missing = tagged(&reg.name("stack/ghost"), "2023.2-main");
    mv.insert(
        1,
        Move::new(
            missing.clone(),
            tagged(&reg.name("stack/ghost"), "2023.2-stable"),
        ),
    );
    let e = c.promote(&mv, false).await.unwrap_err();
    match &e {
        PromotionError::Sources { problems } => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].0, missing);
        }
        other => panic!("{other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("stack/ghost:2023.2-main does not exist") && msg.contains("nothing was moved"),
        "{msg}"
    );
    for (i, t) in s.targets.iter().enumerate() {
        assert_eq!(digest_of(&c, t).await, old[i], "{t} untouched");
    }
}

#[tokio::test]
async fn a_failed_put_puts_every_moved_tag_back() {
    let reg = registry();
    let c = client();
    let (s, old) = stack(&c, &reg).await;
    // Order the moves so that the new target (leaf) and root move first,
    // then child's put fails every time (500, retried, then final).
    let puts = Arc::new(AtomicUsize::new(0));
    let p = puts.clone();
    let proxy = Proxy::start(reg.addr(), move |req| {
        if req.method == "PUT" && req.is_manifest() {
            let n = p.fetch_add(1, Ordering::SeqCst);
            if req.path().ends_with("stack/child/manifests/2023.2-stable") && n < 10 {
                return Action::Respond(Resp::new(500, &[], "injected failure"));
            }
        }
        Action::Forward
    })
    .await;
    let host = proxy.host();
    let via: Vec<Move> = moves(&s, Some(&host));
    let via = vec![via[2].clone(), via[0].clone(), via[1].clone()];
    let e = c.promote(&via, false).await.unwrap_err();
    let msg = e.to_string();
    match &e {
        PromotionError::Failed {
            failed,
            cause,
            restored,
            left_in_place,
            not_restored,
        } => {
            assert!(failed.to_string().ends_with("stack/child:2023.2-stable"));
            assert!(
                matches!(cause, RegistryError::Status { status: 500, .. }),
                "{cause}"
            );
            assert_eq!(restored.len(), 1, "{msg}");
            assert!(
                restored[0]
                    .to_string()
                    .ends_with("stack/root:2023.2-stable")
            );
            assert_eq!(left_in_place.len(), 1, "{msg}");
            assert!(
                left_in_place[0]
                    .to
                    .to_string()
                    .ends_with("stack/leaf:2023.2-stable")
            );
            assert!(not_restored.is_empty(), "{msg}");
        }
        other => panic!("{other}"),
    }
    assert!(
        msg.contains("LEFT IN PLACE") && msg.contains("stack/leaf:2023.2-stable"),
        "{msg}"
    );
    assert!(msg.contains("injected failure"), "{msg}");
    // Root and child are exactly as before; leaf (new) names the source.
    assert_eq!(digest_of(&c, &s.targets[0]).await, old[0]);
    assert_eq!(digest_of(&c, &s.targets[1]).await, old[1]);
    assert_eq!(
        digest_of(&c, &s.targets[2]).await.as_deref(),
        Some(s.source_digests[2].as_str())
    );
    assert_eq!(
        proxy.count("PUT", "stack/child/manifests/2023.2-stable"),
        3,
        "retried, bounded"
    );
}

#[tokio::test]
async fn a_failed_put_with_all_targets_existing_leaves_every_tag_as_it_was() {
    let reg = registry();
    let c = client();
    let (s, _) = stack(&c, &reg).await;
    // Give leaf an old stable too, so every target existed before.
    let leaf_old = push_tagged_image(&c, &s.targets[2], Family::Oci, "leaf-old")
        .await
        .unwrap();
    let before: Vec<Option<String>> = {
        let mut v = vec![];
        for t in &s.targets {
            v.push(digest_of(&c, t).await);
        }
        v
    };
    assert_eq!(before[2].as_deref(), Some(leaf_old.digest().as_str()));
    // Fail the third manifest PUT for good, and drop one connection on the
    // first PUT (retried).
    let puts = Arc::new(AtomicUsize::new(0));
    let p = puts.clone();
    let proxy = Proxy::start(reg.addr(), move |req| {
        if req.method == "PUT" && req.is_manifest() {
            let n = p.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                return Action::Drop;
            }
            if req.path().ends_with("stack/leaf/manifests/2023.2-stable") {
                return Action::Respond(Resp::new(500, &[], "injected"));
            }
        }
        Action::Forward
    })
    .await;
    let via = moves(&s, Some(&proxy.host()));
    let e = c.promote(&via, false).await.unwrap_err();
    match &e {
        PromotionError::Failed {
            restored,
            left_in_place,
            not_restored,
            ..
        } => {
            assert_eq!(restored.len(), 2, "{e}");
            assert!(left_in_place.is_empty() && not_restored.is_empty(), "{e}");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("every tag is as it was"), "{e}");
    for (i, t) in s.targets.iter().enumerate() {
        assert_eq!(digest_of(&c, t).await, before[i], "{t}");
    }
}

#[tokio::test]
async fn transient_put_failure_during_promotion_is_retried() {
    let reg = registry();
    let c = client();
    let (s, _) = stack(&c, &reg).await;
    let puts = Arc::new(AtomicUsize::new(0));
    let p = puts.clone();
    let proxy = Proxy::start(reg.addr(), move |req| {
        if req.method == "PUT" && req.is_manifest() && p.fetch_add(1, Ordering::SeqCst) == 1 {
            return Action::Respond(Resp::new(500, &[], "blip"));
        }
        Action::Forward
    })
    .await;
    let report = c
        .promote(&moves(&s, Some(&proxy.host())), false)
        .await
        .unwrap();
    assert_eq!(report.moves.len(), 3);
    for (i, t) in s.targets.iter().enumerate() {
        assert_eq!(
            digest_of(&c, t).await.as_deref(),
            Some(s.source_digests[i].as_str())
        );
    }
    assert_eq!(puts.load(Ordering::SeqCst), 4, "3 puts + 1 retry");
}

#[tokio::test]
async fn promotion_rejects_bad_move_lists() {
    let reg = registry();
    let c = client();
    let n = reg.name("a/b");
    let m = Move::new(tagged(&n, "x"), tagged(&n, "y"));
    let e = c.promote(&[m.clone(), m], false).await.unwrap_err();
    assert!(e.to_string().contains("more than once"), "{e}");
    let d = n.with_digest(strata_registry::manifest::sha256_digest(b"x"));
    let e = c
        .promote(&[Move::new(tagged(&n, "x"), d)], false)
        .await
        .unwrap_err();
    assert!(matches!(e, PromotionError::InvalidMoves(_)), "{e}");
}

#[tokio::test]
async fn manifest_validation_on_put() {
    // Bytes that are not a manifest never reach the registry.
    let e = Manifest::from_bytes(
        b"{\"schemaVersion\":2}".to_vec(),
        Some(manifest::DOCKER_MANIFEST),
    )
    .unwrap_err();
    assert_eq!(e, manifest::ManifestError::NoMediaType);
}

#[tokio::test]
async fn published_tags_follow_the_lookup_order_pinned_by_digest() {
    use strata_core::plan::Published;
    let reg = registry();
    let c = client();
    let name = name_at(&reg.host(), "stack/parent");
    let spec = strata_core::spec::parse(
        "images:\n  parent: {image_name: x/p}\ntag: {prefix: '2024.1'}\n",
        "spec.yml",
    )
    .spec
    .unwrap();
    let plan = &spec.plans[0];
    // The base's history (newest first) and the stable tag are published;
    // the head's own tag is not.
    let older = push_tagged_image(&c, &tagged(&name, "2024.1-aaaaaaa"), Family::Oci, "older")
        .await
        .unwrap();
    push_tagged_image(&c, &tagged(&name, "2024.1-stable"), Family::Oci, "stable")
        .await
        .unwrap();
    let suffixes = ["hhhhhhh", "bbbbbbb", "aaaaaaa", "main"]
        .map(String::from)
        .to_vec();
    let mut tags = strata_registry::PublishedTags::new(suffixes.clone());
    let image_name = name.to_string();
    assert_eq!(
        tags.published(&c, &image_name, plan, None).await.unwrap(),
        Published::At(format!("{image_name}:2024.1-aaaaaaa@{}", older.digest()))
    );
    // A newer ancestor's tag wins once it exists (the listing is per
    // lookup: a new PublishedTags lists again).
    let newer = push_tagged_image(&c, &tagged(&name, "2024.1-bbbbbbb"), Family::Oci, "newer")
        .await
        .unwrap();
    let mut tags = strata_registry::PublishedTags::new(suffixes);
    assert_eq!(
        tags.published(&c, &image_name, plan, None).await.unwrap(),
        Published::At(format!("{image_name}:2024.1-bbbbbbb@{}", newer.digest()))
    );
    // A repository the registry does not have: nothing published.
    let absent = name_at(&reg.host(), "stack/absent").to_string();
    assert_eq!(
        tags.published(&c, &absent, plan, None).await.unwrap(),
        Published::Missing
    );
}

/// An unchanged image is tagged at the digest the run planned with (the
/// one its children were built on): a tag that moved since is refused,
/// naming both digests, and nothing is tagged.
#[tokio::test]
async fn unchanged_images_are_tagged_at_the_planned_digest_or_not_at_all() {
    let reg = registry();
    let c = client();
    let name = name_at(&reg.host(), "stack/moved");
    let published = tagged(&name, "2024.1-aaaaaaa");
    let planned = push_tagged_image(&c, &published, Family::Oci, "planned")
        .await
        .unwrap();
    let mut tags = strata_registry::PublishedTags::new(vec!["aaaaaaa".to_string()]);
    let (pinned, digest) = tags
        .tagged(&c, &name.to_string(), "2024.1-aaaaaaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(digest, planned.digest().to_string());

    // Another process moves the tag during the run.
    let moved = push_tagged_image(&c, &published, Family::Oci, "moved")
        .await
        .unwrap();
    // The run's lookups keep the digest they planned with.
    let (again, _) = tags
        .tagged(&c, &name.to_string(), "2024.1-aaaaaaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, pinned);

    let from: ImageRef = pinned.parse().unwrap();
    let target = tagged(&name, "2024.1-bbbbbbb");
    let e = strata_registry::tag_pinned(&c, &from, &target)
        .await
        .unwrap_err();
    let said = e.to_string();
    assert!(
        matches!(e, strata_registry::TagError::Moved { .. })
            && said.contains(&planned.digest().to_string())
            && said.contains(&moved.digest().to_string()),
        "{said}"
    );
    assert_eq!(digest_of(&c, &target).await, None, "a moved tag was copied");

    // Where it did not move, the target names the planned digest.
    let still = tagged(&name, "2024.1-ccccccc");
    let kept = push_tagged_image(&c, &still, Family::Oci, "kept")
        .await
        .unwrap();
    let from: ImageRef = format!("{still}@{}", kept.digest()).parse().unwrap();
    let copied = strata_registry::tag_pinned(&c, &from, &target)
        .await
        .unwrap();
    assert_eq!(copied, *kept.digest());
    assert_eq!(
        digest_of(&c, &target).await,
        Some(kept.digest().to_string())
    );
}

/// A host name that does not resolve and a port nobody listens on are
/// final: one attempt, no backoff, whatever the retry policy allows.
#[tokio::test]
async fn unresolvable_and_refused_registries_are_not_retried() {
    let c = client();
    for reference in ["registry.invalid/stack/x:1", "127.0.0.1:9/stack/x:1"] {
        let r: ImageRef = reference.parse().unwrap();
        let e = c.head_manifest(&r).await.unwrap_err();
        assert!(
            matches!(e, RegistryError::Unreachable { attempts: 1, .. }),
            "{reference}: {e}"
        );
    }
}

/// An index lists each platform's image under the platform its config
/// says: an amd64 image listed as linux/arm64 is refused and no index is
/// put; listed rightly, the index is put.
#[tokio::test]
async fn an_index_refuses_an_image_of_another_platform() {
    use strata_registry::PlatformImage;
    let reg = registry();
    let c = client();
    let name = name_at(&reg.host(), "stack/index");
    let mut images = Vec::new();
    for (platform, seed) in [("linux/amd64", "one"), ("linux/arm64", "two")] {
        // Both configs say amd64 (push_image's).
        let m = push_image(&c, &name, Family::Oci, seed).await.unwrap();
        let pinned = name.with_digest(m.digest().clone());
        c.put_manifest(&pinned, &m).await.unwrap();
        images.push(PlatformImage {
            platform: platform.parse().unwrap(),
            manifest: pinned,
        });
    }
    let target = tagged(&name, "2024.1-aaaaaaa");
    let e = strata_registry::put_index(&c, &target, &images)
        .await
        .unwrap_err();
    let said = e.to_string();
    assert!(
        matches!(e, RegistryError::PlatformMismatch { .. })
            && said.contains("linux/arm64")
            && said.contains("linux/amd64")
            && said.contains(&images[1].manifest.to_string()),
        "{said}"
    );
    assert_eq!(digest_of(&c, &target).await, None, "an index was put");
    let digest = strata_registry::put_index(&c, &target, &images[..1])
        .await
        .unwrap();
    assert_eq!(digest_of(&c, &target).await, Some(digest.to_string()));
}

/// Artifacts about an image, on a registry without the referrers API
/// (docker-registry 2.8): each is listed under the OCI 1.1 fallback tag of
/// the image's digest, found from that digest alone, with its content; the
/// same artifact put twice is listed once, and another is added beside it,
/// not in its place. An image the registry lacks is refused.
#[tokio::test]
async fn referrers_are_listed_under_the_fallback_tag_and_added_not_replaced() {
    use strata_registry::referrers::{
        Artifact, artifact_content, fallback_tag, put_referrer, referrers,
    };
    let reg = registry();
    let c = client();
    let name = reg.name("org/described");
    let image = push_tagged_image(&c, &tagged(&name, "1"), Family::Oci, "described")
        .await
        .unwrap();
    let subject = name.with_digest(image.digest().clone());
    let artifact = |kind: &'static str, content: &str| Artifact {
        artifact_type: kind,
        file_name: "image.sbom.json",
        content: content.as_bytes().to_vec(),
        annotations: std::collections::BTreeMap::from([("a".to_string(), kind.to_string())]),
    };
    assert!(
        referrers(&c, &name, image.digest(), None)
            .await
            .unwrap()
            .is_empty()
    );
    let spdx = put_referrer(
        &c,
        &subject,
        artifact("application/spdx+json", "{\"spdx\": 1}"),
    )
    .await
    .unwrap();
    let again = put_referrer(
        &c,
        &subject,
        artifact("application/spdx+json", "{\"spdx\": 1}"),
    )
    .await
    .unwrap();
    assert_eq!(spdx, again);
    let cdx = put_referrer(
        &c,
        &subject,
        artifact("application/vnd.cyclonedx+json", "{\"cdx\": 1}"),
    )
    .await
    .unwrap();

    let all = referrers(&c, &name, image.digest(), None).await.unwrap();
    let listed: Vec<(&str, String)> = all
        .iter()
        .map(|r| (r.artifact_type.as_str(), r.digest.to_string()))
        .collect();
    assert_eq!(
        listed,
        [
            ("application/spdx+json", spdx.to_string()),
            ("application/vnd.cyclonedx+json", cdx.to_string()),
        ]
    );
    assert_eq!(all[1].annotations["a"], "application/vnd.cyclonedx+json");
    let only = referrers(&c, &name, image.digest(), Some("application/spdx+json"))
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    let content = artifact_content(&c, &name, &spdx, 1024).await.unwrap();
    assert_eq!(content.as_deref(), Some(b"{\"spdx\": 1}".as_slice()));

    // The fallback index is an OCI index under `sha256-<hex>`, and the
    // artifact's manifest names the image as its subject.
    let index = c
        .get_manifest(&name.with_tag(fallback_tag(image.digest()).unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index.media_type(), manifest::OCI_INDEX);
    let stored = c
        .get_manifest(&name.with_digest(spdx.clone()))
        .await
        .unwrap()
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(stored.bytes()).unwrap();
    assert_eq!(stored["subject"]["digest"], image.digest().to_string());
    assert_eq!(stored["artifactType"], "application/spdx+json");

    let missing = name.with_digest(
        "sha256:0000000000000000000000000000000000000000000000000000000000000000"
            .parse()
            .unwrap(),
    );
    let refused = put_referrer(&c, &missing, artifact("application/spdx+json", "{}")).await;
    assert!(
        matches!(refused, Err(RegistryError::NotFound { .. })),
        "{refused:?}"
    );
}
