//! `harness stack restart PART`: one part started again exactly as `up` started it (same
//! program, arguments, port and working directory), so a process fault can kill it and its
//! undo bring it back: a scenario's restart command is
//! `["{env:HARNESS_BIN}", "stack", "restart", "broker", "--dir", "{env:HARNESS_STACK_DIR}"]`.

use std::path::Path;
use std::time::Duration;

use super::process::{self, Child};
use super::{app, broker, dependency, StackError, StackState};

/// How long a still-running part gets to stop before it is killed.
const GRACE: Duration = Duration::from_secs(15);

impl StackState {
    /// The parts `restart` knows.
    pub const RESTARTABLE: [&'static str; 3] = ["broker", "app", "dependency"];

    /// Stops `part` if it still runs, starts it again, records its new pid (state and pid
    /// file) and waits until it answers as `up` does.
    pub async fn restart(dir: &Path, part: &str) -> Result<StackState, StackError> {
        let mut state = StackState::load(dir)?.ok_or_else(|| StackError::NotUp(Self::path(dir)))?;
        let missing = || StackError::NoPart {
            part: part.to_owned(),
            dir: dir.to_owned(),
        };
        let old = state.child_mut(part).ok_or_else(missing)?.clone();
        old.stop(GRACE);
        let new = process::respawn(&old)?;
        *state.child_mut(part).ok_or_else(missing)? = new.clone();
        // Recorded before waiting: a part that never gets ready is still stopped by `down`.
        state.save(dir)?;
        state.wait_part(part, &new).await?;
        Ok(state)
    }

    fn child_mut(&mut self, part: &str) -> Option<&mut Child> {
        match part {
            "broker" => self.broker.as_mut().map(|b| &mut b.child),
            "app" => self.app.as_mut().map(|a| &mut a.child),
            "dependency" => self.dependency.as_mut().map(|d| &mut d.child),
            _ => None,
        }
    }

    async fn wait_part(&self, part: &str, child: &Child) -> Result<(), StackError> {
        match part {
            "broker" => {
                let b = self.broker.as_ref().expect("restarted, so recorded");
                let port = b.port().ok_or_else(|| StackError::Missing {
                    what: format!("a port in the broker's address {}", b.direct),
                    hint: "`harness stack down` and `up` again".into(),
                })?;
                broker::wait_ready(child, port).await
            }
            "app" => app::wait_healthy(child, &self.app.as_ref().expect("recorded").url).await,
            _ => {
                dependency::wait_ready(child, &self.dependency.as_ref().expect("recorded").url)
                    .await
            }
        }
    }
}
