//! Entry point of the `validate` fuzz target: the input rules of `swarm-core`.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use swarm_core::config::SwarmConfig;
use swarm_core::model::{
    CpuKind, CreateOptions, GuestSize, ImageVersion, IpMode, ResizeOptions, WorkspaceName,
    WorkspaceSpec,
};
use swarm_core::validate::{self, ValidationError};

/// Feeds one validation rule, picked by the first byte, with values read from the rest:
/// `validate_name`, `validate_create`, `validate_resize`, `parse_idle_timeout`,
/// `validate_image`, `rollback_target`, `validate_snapshot_id`.
///
/// Invariants: never panics; an error names its field and carries the value; what is
/// accepted obeys the rule as stated independently here (names, snapshot ids, sizes
/// within bounds, storage only grows, a rollback target is an earlier recorded version).
pub fn validation(data: &[u8]) {
    let mut input = Input(data);
    match input.byte() % 7 {
        0 => name(&input.rest()),
        1 => create(&mut input),
        2 => resize(&mut input),
        3 => idle_timeout(&input.rest()),
        4 => image(&input.rest()),
        5 => rollback(&mut input),
        _ => snapshot_id(&input.rest()),
    }
}

const FIELDS: [&str; 15] = [
    "name",
    "region",
    "storage",
    "image",
    "env",
    "metadata",
    "cpus",
    "cpu_kind",
    "memory",
    "ip",
    "idle_timeout",
    "idle_policy",
    "dotfiles",
    "init",
    "resize",
];

fn assert_names_field(error: &ValidationError, value: Option<&str>) {
    assert!(FIELDS.contains(&error.field), "unknown field: {error:?}");
    let shown = error.to_string();
    assert!(shown.contains(error.field), "{shown}");
    if let Some(value) = value {
        assert_eq!(error.value, value, "{error:?}");
    }
}

fn name(text: &str) {
    let expected = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('-');
    match validate::validate_name(text) {
        Ok(()) => assert!(expected, "accepted {text:?}"),
        Err(error) => {
            assert!(!expected, "refused {text:?}: {error}");
            assert_eq!(error.field, "name");
            assert_names_field(&error, Some(text));
        }
    }
}

fn idle_timeout(text: &str) {
    match validate::parse_idle_timeout(text) {
        Ok(secs) => {
            assert!((61..=7 * 24 * 3600).contains(&secs), "{text:?} gave {secs}");
            if let Ok(plain) = text.trim().parse::<u64>() {
                assert_eq!(plain, secs);
            }
        }
        Err(error) => {
            assert_eq!(error.field, "idle_timeout");
            assert_names_field(&error, Some(text));
        }
    }
}

fn image(text: &str) {
    let pinned = validate::image_is_pinned(text);
    match validate::validate_image(text) {
        Ok(()) => {
            assert!((1..=512).contains(&text.len()), "{text:?}");
            assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{text:?}");
            // Pinned means a digest or a tag.
            assert!(!pinned || text.contains(['@', ':']), "{text:?}");
        }
        Err(error) => {
            assert_eq!(error.field, "image");
            assert_names_field(&error, Some(text));
        }
    }
}

fn snapshot_id(text: &str) {
    let expected = text.strip_prefix("vs_").is_some_and(|body| {
        (1..=60).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    match validate::validate_snapshot_id(text) {
        Ok(()) => assert!(expected, "accepted {text:?}"),
        Err(error) => {
            assert!(!expected, "refused {text:?}");
            assert_eq!((error.field, error.value.as_str()), ("snapshot", text));
        }
    }
}

fn config(input: &mut Input<'_>) -> SwarmConfig {
    let mut config = SwarmConfig::default();
    if input.flag() {
        config.default_cpus = input.u32();
        config.default_memory_mb = input.u32();
        config.default_storage_gb = input.u32();
        config.default_region = input.text();
        config.default_image = input.text();
    }
    config
}

fn map(input: &mut Input<'_>) -> BTreeMap<String, String> {
    (0..input.byte() % 4)
        .map(|_| (input.text(), input.text()))
        .collect()
}

fn create(input: &mut Input<'_>) {
    let config = config(input);
    let options = CreateOptions {
        name: input.text(),
        region: input.option(Input::text),
        cpus: input.option(Input::u32),
        cpu_kind: input.option(Input::text),
        memory_mb: input.option(Input::u32),
        storage_gb: input.option(Input::u32),
        image: input.option(Input::text),
        env: map(input),
        metadata: map(input),
        ip: input.option(Input::text),
        idle_timeout: input.option(Input::text),
        dotfiles: input.option(Input::text),
        init: input.option(Input::text),
        idle_policy: input.option(Input::text),
        owner: None,
    };
    match validate::validate_create(&options, &config) {
        Ok(created) => {
            let spec = created.spec;
            assert_eq!(spec.name.as_str(), options.name);
            assert!(validate::validate_name(&options.name).is_ok());
            assert!(config.regions.contains(&spec.region), "{spec:?}");
            assert!((1..=500).contains(&spec.storage_gb), "{spec:?}");
            assert!(validate::validate_image(&spec.image).is_ok(), "{spec:?}");
            assert!(validate::validate_env(&spec.env).is_ok());
            assert!(validate::validate_metadata(&spec.metadata).is_ok());
            assert_guest_fits(spec.guest);
            if options.idle_timeout.is_some() {
                assert!((61..=7 * 24 * 3600).contains(&spec.idle_timeout_secs));
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal without a reason");
            for error in &errors {
                assert_names_field(error, None);
            }
        }
    }
}

fn assert_guest_fits(guest: GuestSize) {
    let allowed: &[u32] = match guest.cpu_kind {
        CpuKind::Shared => &[1, 2, 4, 6, 8],
        CpuKind::Performance => &[1, 2, 4, 6, 8, 10, 12, 14, 16],
    };
    assert!(allowed.contains(&guest.cpus), "{guest:?}");
    let (min, max) = validate::memory_bounds(guest.cpu_kind, guest.cpus);
    assert!((min..=max).contains(&guest.memory_mb), "{guest:?}");
}

fn resize(input: &mut Input<'_>) {
    let config = config(input);
    let current = WorkspaceSpec {
        // A resize never reads the name; any valid one will do.
        name: WorkspaceName::parse("fuzzed").expect("a valid name"),
        region: input.text(),
        guest: GuestSize {
            cpu_kind: if input.flag() {
                CpuKind::Shared
            } else {
                CpuKind::Performance
            },
            cpus: input.u32(),
            memory_mb: input.u32(),
        },
        storage_gb: input.u32(),
        image: String::new(),
        env: BTreeMap::new(),
        metadata: BTreeMap::new(),
        ip_mode: IpMode::Shared,
        idle_timeout_secs: 0,
        dotfiles: None,
        init_script: None,
        idle_policy: Default::default(),
        org: String::new(),
        owner: None,
    };
    let options = ResizeOptions {
        cpus: input.option(Input::u32),
        cpu_kind: input.option(Input::text),
        memory_mb: input.option(Input::u32),
        storage_gb: input.option(Input::u32),
    };
    match validate::validate_resize(&current, &options, &config) {
        Ok(plan) => {
            assert!(plan.storage_gb >= current.storage_gb, "{plan:?}");
            assert!((1..=500).contains(&plan.storage_gb), "{plan:?}");
            assert_guest_fits(plan.guest);
            if let Some(memory) = options.memory_mb {
                assert_eq!(plan.guest.memory_mb, memory);
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal without a reason");
            for error in &errors {
                assert_names_field(error, None);
            }
        }
    }
}

fn rollback(input: &mut Input<'_>) {
    let versions: Vec<ImageVersion> = (0..input.byte() % 8)
        .map(|_| ImageVersion {
            // Small numbers, so duplicates and matches happen.
            version: u32::from(input.byte() % 8),
            image: input.text(),
            digest: None,
            guest: None,
            machine_version: None,
            snapshot_before: None,
            rollback_of: None,
            at: OffsetDateTime::UNIX_EPOCH,
        })
        .collect();
    let to = input.option(|input| u32::from(input.byte() % 10));
    let current = versions.last().map(|v| v.version);
    match validate::rollback_target(&versions, to) {
        Ok(target) => {
            let index = versions.iter().position(|v| std::ptr::eq(v, target));
            assert!(index.is_some(), "the target is not one of the versions");
            match to {
                Some(wanted) => {
                    assert_eq!(target.version, wanted);
                    assert_ne!(Some(wanted), current);
                }
                None => assert_eq!(index, versions.len().checked_sub(2)),
            }
        }
        Err(error) => {
            assert_eq!(error.field, "version");
            if let Some(wanted) = to {
                assert!(
                    Some(wanted) == current || versions.iter().all(|v| v.version != wanted),
                    "refused an earlier version: {error}"
                );
            } else {
                assert!(
                    versions.len() < 2,
                    "refused with an earlier version: {error}"
                );
            }
        }
    }
}

/// Words that reach the accepting paths, which raw bytes rarely would.
const WORDS: [&str; 24] = [
    "",
    "alice",
    "dev-box-2",
    "ams",
    "fra",
    "shared",
    "performance",
    "dedicated",
    "private",
    "30m",
    "1h30m",
    "90s",
    "3600",
    "codercom/code-server:4.106.3",
    "codercom/code-server:latest",
    "ghcr.io:5000/org/img__x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "vs_2Z4k9XyQ7bN1",
    "GIT_AUTHOR_NAME",
    "FLY_REGION",
    "swarm_id",
    "team.name",
    "HASHED_PASSWORD",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "xn--caf-dma",
];

/// Reads values from fuzz bytes; past the end everything reads as zero or empty.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&byte, rest)) => {
                self.0 = rest;
                byte
            }
            None => 0,
        }
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn option<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> Option<T> {
        self.flag().then(|| read(self))
    }

    fn u32(&mut self) -> u32 {
        const EDGES: [u32; 12] = [
            0,
            1,
            2,
            16,
            256,
            500,
            501,
            2048,
            8192,
            131_072,
            u32::MAX / 256,
            u32::MAX,
        ];
        match self.byte() % 4 {
            0 => u32::from(self.byte()),
            1 => u32::from(self.byte()) * 256,
            2 => EDGES[usize::from(self.byte()) % EDGES.len()],
            _ => u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()]),
        }
    }

    /// A dictionary word, or up to a few hundred raw bytes (lossy UTF-8).
    fn text(&mut self) -> String {
        let selector = usize::from(self.byte());
        if let Some(word) = WORDS.get(selector) {
            return (*word).to_owned();
        }
        let mut len = selector - WORDS.len();
        if selector == 255 {
            len = usize::from(u16::from_le_bytes([self.byte(), self.byte()]));
        }
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        String::from_utf8_lossy(taken).into_owned()
    }

    fn rest(&mut self) -> String {
        let text = String::from_utf8_lossy(self.0).into_owned();
        self.0 = &[];
        text
    }
}
