//! What to tell the user if Ctrl-C ends the command now.

use std::sync::Mutex;

/// Commands update it as they go, so the interruption message always names the step that was
/// cut short.
#[derive(Default)]
pub struct ResumeHint(Mutex<String>);

impl ResumeHint {
    pub fn set(&self, hint: impl Into<String>) {
        if let Ok(mut current) = self.0.lock() {
            *current = hint.into();
        }
    }

    pub fn get(&self) -> String {
        match self.0.lock() {
            Ok(hint) if !hint.is_empty() => hint.clone(),
            _ => "nothing was changed".to_owned(),
        }
    }
}
