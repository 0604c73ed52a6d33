//! Flag values typed as clap parses them: a malformed `--build-arg`,
//! `--engine` or `--timeout` exits 2 with clap's usage line at once, before
//! any git, engine or registry work.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use strata_core::platform::Platform;

/// `--build-arg KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArg {
    /// The arg's name.
    pub key: String,
    /// Its value (may be empty).
    pub value: String,
}

impl FromStr for BuildArg {
    type Err = String;
    fn from_str(flag: &str) -> Result<BuildArg, String> {
        match flag.split_once('=') {
            Some((key, value)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
                Ok(BuildArg {
                    key: key.to_string(),
                    value: value.to_string(),
                })
            }
            _ => Err(format!("'{flag}' is not KEY=VALUE")),
        }
    }
}

impl fmt::Display for BuildArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// `--engine PLATFORM=ADDRESS`: `unix://` and `tcp://` addresses (`ssh://`
/// needs a tunnel: strata speaks the Engine API, not the docker CLI's ssh
/// helper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFlag {
    /// The platform whose builds and tests go there.
    pub platform: Platform,
    /// The engine's address.
    pub address: String,
}

impl FromStr for EngineFlag {
    type Err = String;
    fn from_str(flag: &str) -> Result<EngineFlag, String> {
        let (platform, address) = flag.split_once('=').ok_or_else(|| {
            format!("'{flag}': write PLATFORM=ADDRESS, e.g. linux/arm64=tcp://arm-builder:2375")
        })?;
        let platform: Platform = platform.parse().map_err(|e| format!("'{flag}': {e}"))?;
        if address.starts_with("ssh://") {
            return Err(format!(
                "'{flag}': ssh:// engines are not reached directly; forward the engine's socket (ssh -nNT -L /tmp/engine.sock:/var/run/docker.sock HOST) and pass {platform}=unix:///tmp/engine.sock"
            ));
        }
        if !["unix://", "tcp://", "http://"]
            .iter()
            .any(|scheme| address.starts_with(scheme))
        {
            return Err(format!(
                "'{flag}': the address must start with unix:// or tcp://"
            ));
        }
        Ok(EngineFlag {
            platform,
            address: address.to_string(),
        })
    }
}

/// `--timeout STAGE=DURATION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutFlag {
    /// The stage's key (`basic_tests`).
    pub stage: &'static str,
    /// Its time limit.
    pub limit: Duration,
}

impl FromStr for TimeoutFlag {
    type Err = String;
    fn from_str(flag: &str) -> Result<TimeoutFlag, String> {
        use strata_core::limits;
        let (stage, duration) = flag
            .split_once('=')
            .ok_or_else(|| format!("'{flag}': write STAGE=DURATION, e.g. basic_tests=45m"))?;
        let stage = limits::stage_key(stage).ok_or_else(|| {
            format!(
                "'{flag}': '{stage}' is not a stage; stages: {}",
                limits::stage_keys().collect::<Vec<_>>().join(", ")
            )
        })?;
        let limit = limits::parse_duration(duration).map_err(|e| format!("'{flag}': {e}"))?;
        Ok(TimeoutFlag { stage, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_are_key_value() {
        let arg: BuildArg = "PY=3.11".parse().unwrap();
        assert_eq!((arg.key.as_str(), arg.value.as_str()), ("PY", "3.11"));
        assert_eq!(arg.to_string(), "PY=3.11");
        assert_eq!("EMPTY=".parse::<BuildArg>().unwrap().value, "");
        for bad in ["PY", "=3", "A B=1"] {
            assert!(bad.parse::<BuildArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn engines_are_a_platform_and_an_api_address() {
        let e: EngineFlag = "linux/arm64=tcp://arm:2375".parse().unwrap();
        assert_eq!(e.platform.to_string(), "linux/arm64");
        assert_eq!(e.address, "tcp://arm:2375");
        let ssh = "linux/arm64=ssh://arm".parse::<EngineFlag>().unwrap_err();
        assert!(ssh.contains("forward the engine's socket"), "{ssh}");
        for bad in ["linux/arm64", "arm=tcp://x", "linux/arm64=ftp://x"] {
            assert!(bad.parse::<EngineFlag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts_are_a_stage_and_a_duration() {
        let t: TimeoutFlag = "basic-tests=45m".parse().unwrap();
        assert_eq!(
            (t.stage, t.limit),
            ("basic_tests", Duration::from_secs(2700))
        );
        let unknown = "compile=1h".parse::<TimeoutFlag>().unwrap_err();
        assert!(unknown.contains("stages: "), "{unknown}");
        for bad in ["build", "build=soon", "build=0s"] {
            assert!(bad.parse::<TimeoutFlag>().is_err(), "{bad}");
        }
    }
}

/// An SBOM format (`--sbom-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
}

impl From<SbomFormat> for strata_sbom::Format {
    fn from(f: SbomFormat) -> Self {
        match f {
            SbomFormat::Spdx => strata_sbom::Format::Spdx,
            SbomFormat::Cyclonedx => strata_sbom::Format::CycloneDx,
        }
    }
}
