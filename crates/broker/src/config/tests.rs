use super::*;

#[test]
fn shipped_file_equals_builtin_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tickwire.toml");
    let from_file = Config::from_file(&path).expect("shipped config parses");
    assert_eq!(from_file, Config::default());
}

#[test]
fn tls_sections_are_optional_and_need_both_files() {
    assert_eq!(Config::default().tls, None);
    let c = Config::from_toml("[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n").unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.addr, "0.0.0.0:8443");
    assert_eq!(tls.cert_file, "c.pem");
    let err = Config::from_toml("[tls]\ncert_file = \"c.pem\"\n").unwrap_err();
    assert!(err.to_string().contains("key_file"), "{err}");
    let err = Config::from_toml("[tls]\naddr = \"x\"\ncert_file = \"c\"\nkey_file = \"k\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("tls.addr"), "{err}");
    let c = Config::from_toml(
        "[ingest.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\n",
    )
    .unwrap();
    assert_eq!(c.ingest.tls.unwrap().client_ca_file.as_deref(), Some("ca"));
}

#[test]
fn an_exposed_ingest_needs_tokens_or_mutual_tls_or_an_explicit_opt_out() {
    let err = Config::from_toml("[ingest]\naddr = \"0.0.0.0:7001\"\n").unwrap_err();
    assert!(err.to_string().contains("ingest.addr"), "{err}");
    for ok in [
        "[ingest]\naddr = \"127.0.0.1:7001\"\n",
        "[ingest]\naddr = \"0.0.0.0:7001\"\ntokens = [\"t\"]\n",
        "[ingest]\naddr = \"0.0.0.0:7001\"\nallow_unauthenticated_remote = true\n",
        "[ingest]\naddr = \"0.0.0.0:7001\"\n[[ingest.producers]]\ntoken = \"p\"\ntopics = [\"A*\"]\n",
        "[ingest]\naddr = \"0.0.0.0:7001\"\n[ingest.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\n",
    ] {
        assert!(Config::from_toml(ok).is_ok(), "{ok}");
    }
    // TLS without client certificates is not authentication.
    let err = Config::from_toml(
        "[ingest]\naddr = \"0.0.0.0:7001\"\n[ingest.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("ingest.addr"), "{err}");
}

#[test]
fn producer_entries_are_checked_without_printing_tokens() {
    let err =
        Config::from_toml("[[ingest.producers]]\ntoken = \"sekrit\"\ntopics = [\"BAD TOPIC\"]\n")
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("ingest.producers.topics") && !err.contains("sekrit"),
        "{err}"
    );
    let err = Config::from_toml(
        "[ingest]\ntokens = [\"sekrit\"]\n[[ingest.producers]]\ntoken = \"sekrit\"\ntopics = [\"A\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ingest.producers.token") && !err.contains("sekrit"),
        "{err}"
    );
    let err = Config::from_toml("[[ingest.producers]]\ntoken = \"x\"\ntopics = []\n").unwrap_err();
    assert!(err.to_string().contains("ingest.producers.topics"), "{err}");
}

#[test]
fn auth_needs_exactly_one_key_and_valid_grants() {
    let secret = "s".repeat(32);
    assert!(Config::from_toml(&format!("[auth]\njwt_hs256_secret = \"{secret}\"\n")).is_ok());
    let err = Config::from_toml("[auth]\nissuer = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("`auth`"), "{err}");
    let err = Config::from_toml(&format!(
        "[auth]\njwt_hs256_secret = \"{secret}\"\njwt_public_key_file = \"k.pem\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");
    let err = Config::from_toml("[auth]\njwt_hs256_secret = \"short\"\n").unwrap_err();
    assert!(
        err.to_string().contains("auth.jwt_hs256_secret") && !err.to_string().contains("short\""),
        "{err}"
    );
    let err = Config::from_toml(&format!(
        "[auth]\njwt_hs256_secret = \"{secret}\"\nanonymous_topics = [\"BAD TOPIC\"]\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("auth.anonymous_topics"), "{err}");
}

#[test]
fn the_hardened_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hardened.toml");
    let c = Config::from_file(&path).expect("config/hardened.toml parses");
    assert!(c.tls.is_some() && c.auth.is_some() && c.ingest.tls.is_some());
    assert_eq!(c.ingest.producers.len(), 1);
}

#[test]
fn empty_file_is_defaults() {
    assert_eq!(Config::from_toml("").unwrap(), Config::default());
}

#[test]
fn unknown_key_is_named() {
    let err = Config::from_toml("[server]\nworkerz = 3\n").unwrap_err();
    assert!(err.to_string().contains("workerz"), "{err}");
}

#[test]
fn wrong_type_is_named() {
    let err = Config::from_toml("[server]\nworkers = \"many\"\n").unwrap_err();
    assert!(err.to_string().contains("workers"), "{err}");
}

#[test]
fn every_duration_is_bounded_by_a_day() {
    for key in [
        "server.handshake_timeout_ms",
        "server.shutdown_grace_ms",
        "websocket.idle_ping_ms",
        "websocket.dead_peer_ms",
        "websocket.close_timeout_ms",
        "subscriber.disconnect_after_ms",
        "subscriber.stall_timeout_ms",
        "log.summary_interval_ms",
    ] {
        let (section, name) = key.split_once('.').unwrap();
        let at = format!("[{section}]\n{name} = {MAX_DURATION_MS}\n");
        assert!(Config::from_toml(&at).is_ok(), "{key} at the bound");
        let past = format!("[{section}]\n{name} = {}\n", MAX_DURATION_MS + 1);
        let err = Config::from_toml(&past).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains("at most"), "{key}: {err}");
        let huge = format!("[{section}]\n{name} = {}\n", i64::MAX);
        assert!(Config::from_toml(&huge).is_err(), "{key}: i64::MAX");
    }
}

#[test]
fn send_buffer_is_zero_or_at_least_4096() {
    let with =
        |n: usize| Config::from_toml(&format!("[subscriber]\nsocket_send_buffer_bytes = {n}\n"));
    assert!(with(0).is_ok());
    assert!(with(4096).is_ok());
    let err = with(4095).unwrap_err();
    assert!(
        err.to_string()
            .contains("subscriber.socket_send_buffer_bytes"),
        "{err}"
    );
}

#[test]
fn semantic_error_names_key() {
    let err = Config::from_toml("[ingest]\naddr = \"nowhere\"\n").unwrap_err();
    assert!(err.to_string().contains("ingest.addr"), "{err}");
    let err = Config::from_toml("[server]\nworkers = 65\n").unwrap_err();
    assert!(err.to_string().contains("server.workers"), "{err}");
    let err = Config::from_toml("[demo]\nrate = 0\n").unwrap_err();
    assert!(err.to_string().contains("demo.rate"), "{err}");
}

#[test]
fn history_size_is_at_most_1024_and_0_turns_it_off() {
    let c = Config::from_toml("[history]\nsize = 1024\nmax_bytes = 1000\n").unwrap();
    assert_eq!((c.history.size, c.history.max_bytes), (1024, 1000));
    assert_eq!(
        Config::from_toml("[history]\nsize = 0\n")
            .unwrap()
            .history
            .size,
        0
    );
    let err = Config::from_toml("[history]\nsize = 1025\n").unwrap_err();
    assert!(err.to_string().contains("history.size"), "{err}");
    assert_eq!(Config::default().history.size, 64);
}

#[test]
fn cluster_is_optional_and_checked_without_printing_secrets() {
    assert_eq!(Config::default().cluster, None);
    let c = Config::from_toml("[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\n").unwrap();
    assert_eq!(c.cluster, Some(ClusterConfig::new("nats://127.0.0.1:4222")));
    let cluster = c.cluster.unwrap();
    assert_eq!(cluster.stream_name(), "tickwire_last");
    assert_eq!(cluster.bucket_name(), "tickwire_meta");
    let bad = |extra: &str| {
        Config::from_toml(&format!(
            "[cluster]\nnats_url = \"nats://h:4222\"\n{extra}\n"
        ))
        .unwrap_err()
        .to_string()
    };
    assert!(bad("subject_prefix = \"a..b\"").contains("cluster.subject_prefix"));
    assert!(bad("subject_prefix = \"a.*\"").contains("cluster.subject_prefix"));
    assert!(bad("nats_urls = [\"http://h\"]").contains("cluster.nats_url"));
    let both = bad("token = \"s3cret-token\"\nuser = \"u\"\npassword = \"p\"");
    assert!(
        both.contains("cluster.creds_file") && !both.contains("s3cret"),
        "{both}"
    );
    assert!(bad("user = \"u\"").contains("cluster.user"));
    assert!(bad("cert_file = \"c.pem\"").contains("cluster.cert_file"));
    assert!(bad("publish_queue = 0").contains("cluster.publish_queue"));
    assert!(bad("replicas = 0").contains("cluster.replicas"));
    assert!(bad("fetch_timeout_ms = 86400001").contains("cluster.fetch_timeout_ms"));
    assert!(bad("reconnect_max_ms = 0").contains("cluster.reconnect_max_ms"));
    assert!(bad("bogus = 1").contains("bogus"));
    let dotted = Config::from_toml(
        "[cluster]\nnats_url = \"tls://h:4222\"\nsubject_prefix = \"desk.eu-1\"\n",
    )
    .unwrap();
    assert_eq!(dotted.cluster.unwrap().stream_name(), "desk_eu-1_last");
}
