//! Signatures in cosign's layout, against a real `docker-registry` on
//! loopback: stored under `sha256-<hex>.sig` as an OCI image of one layer
//! per signature, a second signature added beside the first, the same one
//! twice stored once, read back by digest alone.

mod support;

use strata_registry::manifest;
use strata_registry::signatures::{
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING, StoredSignature, add_signature_unless, put_signature,
    signature_tag, signatures,
};
use strata_registry::testing::{Family, TestRegistry, push_tagged_image, tagged};
use support::client;

#[tokio::test]
async fn signatures_are_added_not_replaced_and_read_back() {
    let reg = TestRegistry::start().expect("start docker-registry (scripts/setup.sh installs it)");
    let c = client();
    let name = reg.name("org/signed");
    let image = push_tagged_image(&c, &tagged(&name, "1"), Family::Oci, "signed")
        .await
        .unwrap();
    let digest = image.digest();
    assert!(signatures(&c, &name, digest).await.unwrap().is_empty());

    let first = StoredSignature {
        payload: b"{\"first\":1}".to_vec(),
        signature: "MEUCIQ==".into(),
    };
    let second = StoredSignature {
        payload: b"{\"second\":2}".to_vec(),
        signature: "MEYCIQ==".into(),
    };
    let pinned = name.with_digest(digest.clone());
    let once = put_signature(&c, &pinned, first.clone()).await.unwrap();
    let again = put_signature(&c, &pinned, first.clone()).await.unwrap();
    assert_eq!(once, again, "the same signature twice is stored once");
    put_signature(&c, &pinned, second.clone()).await.unwrap();
    assert_eq!(
        signatures(&c, &name, digest).await.unwrap(),
        [first.clone(), second.clone()]
    );

    // Added unless one stored is held: the first is, so nothing is made
    // or put; a third, when none is.
    let held = add_signature_unless(&c, &pinned, |s| *s == first, || panic!("made"))
        .await
        .unwrap();
    assert_eq!(held, None);
    let third = StoredSignature {
        payload: b"{\"third\":3}".to_vec(),
        signature: "MEQCIA==".into(),
    };
    let added = add_signature_unless(&c, &pinned, |_| false, || third.clone())
        .await
        .unwrap();
    assert!(added.is_some());
    assert_eq!(
        signatures(&c, &name, digest).await.unwrap(),
        [first, second, third]
    );

    // cosign's layout: an OCI image under the tag, one layer per signature.
    let stored = c
        .get_manifest(&name.with_tag(signature_tag(digest).unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.media_type(), manifest::OCI_MANIFEST);
    let json: serde_json::Value = serde_json::from_slice(stored.bytes()).unwrap();
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0]["mediaType"], SIMPLE_SIGNING);
    assert_eq!(layers[1]["annotations"][SIGNATURE_ANNOTATION], "MEYCIQ==");

    // A tag names no signable digest.
    assert!(
        put_signature(
            &c,
            &tagged(&name, "1"),
            StoredSignature {
                payload: Vec::new(),
                signature: String::new(),
            }
        )
        .await
        .is_err()
    );
}
