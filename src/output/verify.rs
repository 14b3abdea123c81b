//! Human renderings of `lock` and `verify`.

use comfy_table::{Attribute, Cell, Color};

use super::human::table;
use super::{Report, Style};
use crate::commands::lock::LockReport;
use crate::commands::verify::VerifyReport;
use crate::error::ExitStatus;
use crate::migrations::version_label as version;
use crate::verify::Level;

impl Report for LockReport {
    fn human(&self, _: &Style) -> String {
        let what = if self.changed { "wrote" } else { "unchanged:" };
        format!(
            "{what} {} from {} migration(s) (head {}) applied on a scratch database at {}\n\
             {} table(s), {} function(s); fingerprint {}\n",
            self.file,
            self.migrations,
            version(self.head),
            self.scratch_server,
            self.tables,
            self.functions,
            &self.fingerprint[..self.fingerprint.len().min(16)]
        )
    }
}

impl Report for VerifyReport {
    fn human(&self, style: &Style) -> String {
        let mut out = format!(
            "target: {}\nhead {}, schema.lock head {}; drift {}\n",
            self.target,
            version(self.head),
            version(self.lock_head),
            if self.drift_compared {
                "compared"
            } else {
                "not compared"
            }
        );
        if !self.findings.is_empty() {
            let mut t = table(style, &["level", "rule", "object", "finding"]);
            for f in &self.findings {
                let mut level = Cell::new(f.level.as_str());
                let mut text = format!("{}\n→ {}", f.message, f.remedy);
                if let Some(reason) = &f.acknowledged {
                    level = Cell::new("acknowledged");
                    text.push_str(&format!(
                        "\nacknowledged ({}) in migrate.toml: {reason}",
                        f.level.as_str()
                    ));
                } else if style.color {
                    level = match f.level {
                        Level::Error => level.fg(Color::Red).add_attribute(Attribute::Bold),
                        Level::Warning => level.fg(Color::Yellow),
                        Level::Info => level.fg(Color::Blue),
                    };
                } else if f.level == Level::Error {
                    level = Cell::new("ERROR");
                }
                t.add_row(vec![
                    level,
                    Cell::new(f.rule.as_str()),
                    Cell::new(f.location()),
                    Cell::new(text),
                ]);
            }
            out.push_str(&format!("{t}\n"));
        }
        for a in &self.unmatched_acknowledgements {
            out.push_str(&format!(
                "migrate.toml acknowledges {} on {}, which verify no longer finds: remove it\n",
                a.rule, a.object
            ));
        }
        out.push_str(&format!(
            "{} error(s), {} warning(s), {} info, {} acknowledged\n",
            self.errors, self.warnings, self.info, self.acknowledged
        ));
        out
    }

    fn status(&self) -> ExitStatus {
        if self.errors > 0 {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }
}
