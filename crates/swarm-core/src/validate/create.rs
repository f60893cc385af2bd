//! `create`: raw input to a complete spec, every broken rule reported.

use crate::config::SwarmConfig;
use crate::error::ValidationError;
use crate::first_boot;
use crate::model::{CreateOptions, ValidatedCreate, WorkspaceName, WorkspaceSpec};

use super::*;

/// Validates raw create input against the rules and fills defaults from `config`.
/// Returns every broken rule, not only the first.
pub fn validate_create(
    options: &CreateOptions,
    config: &SwarmConfig,
) -> Result<ValidatedCreate, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut check = |result: Result<(), ValidationError>| {
        if let Err(error) = result {
            errors.push(error);
        }
    };
    check(validate_name(&options.name));
    let region = options
        .region
        .clone()
        .unwrap_or_else(|| config.default_region.clone());
    check(validate_region(&region, config));
    let storage_gb = options.storage_gb.unwrap_or(config.default_storage_gb);
    check(validate_storage(storage_gb));
    let image = options
        .image
        .clone()
        .unwrap_or_else(|| config.default_image.clone());
    check(validate_image(&image));
    check(validate_env(&options.env));
    check(validate_metadata(&options.metadata));
    let dotfiles = options
        .dotfiles
        .clone()
        .or_else(|| config.default_dotfiles.clone());
    if let Some(url) = &dotfiles {
        check(first_boot::validate_dotfiles_url(url));
    }
    if let Some(script) = &options.init {
        check(first_boot::validate_init_script(script));
    }
    let guest = resolve_guest(
        options.cpus,
        options
            .cpu_kind
            .as_deref()
            .or(config.default_cpu_kind.as_deref()),
        options.memory_mb,
        config,
        &mut notes,
    );
    let ip_mode = options.ip.as_deref().map(parse_ip_mode).transpose();
    let idle_timeout = options
        .idle_timeout
        .as_deref()
        .map(parse_idle_timeout)
        .transpose();
    let idle_policy = options
        .idle_policy
        .as_deref()
        .map(crate::model::parse_idle_policy)
        .transpose();
    let (guest, ip_mode, idle_timeout, idle_policy) =
        match (guest, ip_mode, idle_timeout, idle_policy) {
            (Ok(guest), Ok(ip_mode), Ok(idle), Ok(policy)) if errors.is_empty() => {
                (guest, ip_mode, idle, policy)
            }
            (guest, ip_mode, idle, policy) => {
                errors.extend(guest.err());
                errors.extend(ip_mode.err());
                errors.extend(idle.err());
                errors.extend(policy.err());
                return Err(errors);
            }
        };
    let idle_policy = idle_policy.unwrap_or(config.default_idle_policy);
    if idle_policy == crate::model::IdlePolicy::Suspend {
        crate::model::check_suspendable("idle_policy", "suspend", guest)
            .map_err(|error| vec![error])?;
    }
    if !image_is_pinned(&image) {
        notes.push(format!(
            "image {image} is not pinned to a version; pin a tag (e.g. codercom/code-server:4.106.3) so updates and rollbacks are predictable"
        ));
    }
    Ok(ValidatedCreate {
        spec: WorkspaceSpec {
            name: WorkspaceName(options.name.clone()),
            region,
            guest,
            storage_gb,
            image,
            env: options.env.clone(),
            metadata: options.metadata.clone(),
            ip_mode: ip_mode.unwrap_or(config.default_ip_mode),
            idle_timeout_secs: idle_timeout.unwrap_or(config.default_idle_timeout_secs),
            dotfiles,
            init_script: options.init.clone(),
            idle_policy,
            org: config.org.clone(),
            owner: options.owner.clone(),
        },
        notes,
    })
}
