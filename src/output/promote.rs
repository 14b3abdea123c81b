//! Human renderings of `plan` and `promote`.

use comfy_table::{Cell, Table};

use super::human::{fits, table};
use super::{Report, Style};
use crate::commands::promote::{PlanReport, PromoteReport, Side, VerifyCheck};
use crate::error::ExitStatus;
use crate::migrations::{short, version_label as version};

fn side(label: &str, s: &Side) -> String {
    format!(
        "{label}: {} ({}), {} applied, head {}\n",
        s.environment,
        s.target,
        s.applied,
        version(s.head)
    )
}

fn verify(label: &str, v: &VerifyCheck) -> String {
    if !v.ran {
        return format!("verify on {label}: not run\n");
    }
    if v.findings.is_empty() {
        return format!("verify on {label}: no findings\n");
    }
    let mut out = format!("verify on {label}: {} finding(s)\n", v.findings.len());
    for f in &v.findings {
        out.push_str(&format!(
            "  {} {} {}: {}\n",
            f.level.as_str(),
            f.rule.as_str(),
            f.location(),
            f.message
        ));
    }
    out
}

fn reasons(plan: &PlanReport) -> String {
    plan.reasons
        .iter()
        .map(|r| format!("- [{}] {}", serde_plain(&r.kind), r.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The snake_case name an enum serialises to.
fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Report for PlanReport {
    fn human(&self, style: &Style) -> String {
        let mut out = side("from", &self.from);
        out.push_str(&side("to", &self.to));
        if self.missing.is_empty() {
            out.push_str(&format!(
                "{} lacks nothing that {} applied\n",
                self.to.environment, self.from.environment
            ));
        } else {
            let mut t = self.missing_table(style, true);
            if !fits(&t, style) {
                // The file name holds the name: on a narrow terminal, the column goes.
                t = self.missing_table(style, false);
            }
            out.push_str(&format!(
                "{} lacks {} migration(s):\n{t}\n",
                self.to.environment,
                self.missing.len()
            ));
        }
        out.push_str(&verify(&self.from.environment, &self.from.verify));
        out.push_str(&verify(&self.to.environment, &self.to.verify));
        if self.lint.is_empty() {
            out.push_str(&format!(
                "lint: no findings ({} acknowledged)\n",
                self.lint_acknowledged
            ));
        } else {
            out.push_str(&format!(
                "lint: {} finding(s) in the migrations to apply:\n{}\n",
                self.lint.len(),
                super::findings_table(style, &self.lint)
            ));
        }
        if self.may_proceed {
            out.push_str("may proceed: yes\n");
        } else {
            out.push_str(&format!("may proceed: no\n{}\n", reasons(self)));
        }
        out
    }

    fn status(&self) -> ExitStatus {
        if self.may_proceed {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }

    fn problem(&self) -> Option<String> {
        (!self.may_proceed).then(|| {
            format!(
                "promotion from {} to {} may not proceed:\n{}",
                self.from.environment,
                self.to.environment,
                reasons(self)
            )
        })
    }
}

impl PlanReport {
    fn missing_table(&self, style: &Style, with_name: bool) -> Table {
        let header: &[&str] = if with_name {
            &["version", "name", "file", "checksum"]
        } else {
            &["version", "file", "checksum"]
        };
        let mut t = table(style, header);
        for m in &self.missing {
            let mut cells = vec![Cell::new(format!("{:04}", m.version))];
            if with_name {
                cells.push(Cell::new(&m.name));
            }
            cells.push(Cell::new(m.file.as_deref().unwrap_or("(missing)")));
            cells.push(Cell::new(short(&m.checksum)));
            t.add_row(cells);
        }
        t
    }
}

impl Report for PromoteReport {
    fn human(&self, style: &Style) -> String {
        let plan = &self.plan;
        if !plan.may_proceed {
            return plan.human(style);
        }
        let mut out = side("from", &plan.from);
        out.push_str(&side("to", &plan.to));
        if self.steps.is_empty() && self.failure.is_none() {
            out.push_str(&format!(
                "nothing to promote: {} is at {}'s head ({})\n",
                plan.to.environment,
                plan.from.environment,
                version(self.head)
            ));
            return out;
        }
        if !self.steps.is_empty() {
            let mut t = table(style, &["version", "name", "ms"]);
            for s in &self.steps {
                t.add_row(vec![
                    Cell::new(format!("{:04}", s.version)),
                    Cell::new(&s.name),
                    Cell::new(s.duration_ms),
                ]);
            }
            out.push_str(&format!("{t}\n"));
        }
        out.push_str(&format!(
            "promoted {} migration(s) from {} to {}; head is {}\n",
            self.steps.len(),
            plan.from.environment,
            plan.to.environment,
            version(self.head)
        ));
        out.push_str(&verify(&plan.to.environment, &self.verify));
        out
    }

    fn status(&self) -> ExitStatus {
        let verify_failed = self
            .verify
            .findings
            .iter()
            .any(crate::verify::Finding::fails);
        if !self.plan.may_proceed || self.failure.is_some() || verify_failed {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }

    fn problem(&self) -> Option<String> {
        if !self.plan.may_proceed {
            return self
                .plan
                .problem()
                .map(|p| format!("refusing to promote: {p}"));
        }
        if let Some(f) = &self.failure {
            return Some(format!(
                "{} failed at {}: {}\nit was rolled back; {} migration(s) before it stay applied \
                 in {}",
                f.name,
                f.location(),
                f.error,
                self.steps.len(),
                self.plan.to.environment
            ));
        }
        self.verify
            .findings
            .iter()
            .any(crate::verify::Finding::fails)
            .then(|| format!("verify found errors on {}", self.plan.to.environment))
    }
}
