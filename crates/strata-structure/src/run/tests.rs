use super::*;

#[test]
fn env_entries_split_at_the_first_equals() {
    let map = env_map(&["A=b=c".into(), "EMPTY=".into(), "BARE".into(), "A=d".into()]);
    assert_eq!(map["A"], "d");
    assert_eq!(map["EMPTY"], "");
    assert_eq!(map["BARE"], "");
}

#[test]
fn base_and_clean_follow_go() {
    assert_eq!(go_base("/etc/passwd"), "passwd");
    assert_eq!(go_base("/etc/"), "etc");
    assert_eq!(go_base("/"), "/");
    assert_eq!(go_base(""), ".");
    assert_eq!(go_clean("etc/"), "etc");
    assert_eq!(go_clean("./a//b/"), "a/b");
    assert_eq!(go_clean("/"), "/");
}

#[test]
fn go_lists_print_like_percent_v() {
    assert_eq!(go_list(&["a".into(), "b c".into()]), "[a b c]");
    assert_eq!(go_list(&[]), "[]");
}

#[test]
fn driver_errors_read_as_cst_words_them() {
    let e = DriverError::new(Step::CreateContainer, "API error (400): bad");
    assert_eq!(
        e.to_string(),
        "Error creating container: API error (400): bad"
    );
    let e = DriverError::new(Step::Archive, "API error (404): gone");
    assert_eq!(
        e.to_string(),
        "Error retrieving file from container: API error (404): gone"
    );
}
