//! The machine config we send Fly for a workspace: image, guest, env, mount, files,
//! services with their checks and autostop, restart policy, tags.

use std::collections::BTreeMap;

use base64::Engine as _;
use fly_api::models::{
    Autostop, MachineCheck, MachineConfig, MachineFile, MachineGuest, MachineMount, MachinePort,
    MachineRestart, MachineService, RestartPolicy, StopConfig,
};

use super::MachineRequest;
use super::fly::{FlyProvider, INTERNAL_PORT};

impl FlyProvider {
    /// The machine config a workspace runs with. See the crate README for why each
    /// setting is what it is.
    pub fn machine_config(request: &MachineRequest) -> MachineConfig {
        let port = |port: u16, handlers: &[&str], force_https: bool| MachinePort {
            port: Some(port),
            handlers: handlers
                .iter()
                .map(|handler| (*handler).to_owned())
                .collect(),
            force_https: force_https.then_some(true),
            ..MachinePort::default()
        };
        let healthz = MachineCheck {
            kind: Some("http".to_owned()),
            port: Some(INTERNAL_PORT),
            interval: Some("15s".to_owned()),
            timeout: Some("5s".to_owned()),
            grace_period: Some("30s".to_owned()),
            method: Some("GET".to_owned()),
            path: Some("/healthz".to_owned()),
            protocol: Some("http".to_owned()),
            ..MachineCheck::default()
        };
        MachineConfig {
            image: request.image.clone(),
            guest: Some(MachineGuest {
                cpu_kind: Some(request.guest.cpu_kind.as_str().to_owned()),
                cpus: Some(request.guest.cpus),
                memory_mb: Some(request.guest.memory_mb),
                ..MachineGuest::default()
            }),
            env: request.env.clone(),
            services: vec![MachineService {
                protocol: "tcp".to_owned(),
                internal_port: INTERNAL_PORT,
                ports: vec![
                    port(443, &["tls", "http"], false),
                    port(80, &["http"], true),
                ],
                // Idle policy `stop`: idleness is code-server's call
                // (CODE_SERVER_IDLE_TIMEOUT_SECONDS): it sees websocket activity, and Fly's
                // autostop would stop a workspace after minutes without proxied
                // connections, overriding the user's timeout. `suspend`: only Fly can
                // suspend, so its proxy decides (code-server's exit is off).
                autostop: Some(match request.idle_policy {
                    swarm_core::model::IdlePolicy::Stop => Autostop::Off,
                    swarm_core::model::IdlePolicy::Suspend => Autostop::Suspend,
                }),
                autostart: Some(true),
                min_machines_running: Some(0),
                ..MachineService::default()
            }],
            checks: BTreeMap::from([("healthz".to_owned(), healthz)]),
            mounts: vec![MachineMount {
                volume: request.volume_id.clone(),
                path: request.mount_path.clone(),
                ..MachineMount::default()
            }],
            metadata: request.metadata.clone(),
            files: request
                .files
                .iter()
                .map(|file| MachineFile {
                    guest_path: file.path.clone(),
                    raw_value: Some(
                        base64::engine::general_purpose::STANDARD.encode(&file.contents),
                    ),
                    mode: Some(file.mode),
                    ..MachineFile::default()
                })
                .collect(),
            // An idle exit (status 0) leaves the machine stopped; a crash restarts it.
            restart: Some(MachineRestart {
                policy: Some(RestartPolicy::OnFailure),
                max_retries: Some(3),
            }),
            stop_config: Some(StopConfig {
                signal: Some("SIGTERM".to_owned()),
                timeout: Some("30s".to_owned()),
            }),
            ..MachineConfig::default()
        }
    }
}
