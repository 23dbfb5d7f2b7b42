//! Monthly spend per operation, grouped by each receipt's `finalized_at_ms` in UTC.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::entry::Domain;
use super::replay::{self, ReplayError, ReplaySummary};
use crate::crypto::TrustedKeys;
use crate::json::{self, Value};
use crate::receipt::Receipt;

const MS_PER_DAY: i64 = 86_400_000;

/// A calendar month in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i64,
    month: u8,
}

impl Month {
    /// Builds a month; `month` is 1 to 12.
    pub fn new(year: i64, month: u8) -> Option<Self> {
        (1..=12).contains(&month).then_some(Self { year, month })
    }

    /// The year.
    pub fn year(&self) -> i64 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(&self) -> u8 {
        self.month
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = String;

    /// Parses `YYYY-MM` with a four-digit year.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid month {text:?}: expected YYYY-MM, such as 2026-03");
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4
            || month.len() != 2
            || !(year.bytes().chain(month.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let year = year.parse().map_err(|_| invalid())?;
        let month = month.parse().map_err(|_| invalid())?;
        Month::new(year, month).ok_or_else(invalid)
    }
}

/// Returns the UTC month that contains the instant `ms` milliseconds after the Unix epoch.
pub fn month_of_ms(ms: i64) -> Month {
    // Days since 1970-01-01, rounded towards minus infinity, then the civil
    // date by Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
    let days = ms.div_euclid(MS_PER_DAY);
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // `month` is 1 to 12 by construction.
    Month {
        year,
        month: u8::try_from(month).unwrap_or(1),
    }
}

/// Count and sum of one operation's receipts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationTotal {
    /// Number of receipts.
    pub count: u64,
    /// Sum of `actual_cents`.
    pub cents: i128,
}

/// Spend per operation for one UTC month, from a replayed ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonthlyReport {
    /// The month.
    pub month: Month,
    /// What the replay found.
    pub summary: ReplaySummary,
    /// Totals per operation, sorted by operation name.
    pub operations: BTreeMap<String, OperationTotal>,
    /// Totals over all operations.
    pub total: OperationTotal,
}

impl MonthlyReport {
    /// Replays the ledger or export at `path` and sums the receipts finalized in `month`.
    ///
    /// Nothing is reported unless the whole replay succeeds. Signatures are
    /// checked only when `keys` is given.
    pub fn build(
        path: &Path,
        month: Month,
        keys: Option<&TrustedKeys>,
    ) -> Result<Self, ReplayError> {
        let mut operations: BTreeMap<String, OperationTotal> = BTreeMap::new();
        let summary = replay::replay(path, keys, &mut |entry| {
            if entry.domain() != Domain::Billing {
                return;
            }
            // The replay checked this body with the same parser before calling `visit`.
            let Ok(receipt) = Receipt::from_value(entry.body()) else {
                return;
            };
            if month_of_ms(receipt.finalized_at_ms()) != month {
                return;
            }
            let total = operations
                .entry(receipt.operation().to_owned())
                .or_default();
            total.count += 1;
            total.cents += i128::from(receipt.actual_cents());
        })?;
        let total = operations
            .values()
            .fold(OperationTotal::default(), |sum, item| OperationTotal {
                count: sum.count + item.count,
                cents: sum.cents + item.cents,
            });
        Ok(Self {
            month,
            summary,
            operations,
            total,
        })
    }

    /// Encodes the report as canonical JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let total_json = |total: &OperationTotal| {
            let mut object = json::Object::new();
            object.insert("count".to_owned(), json::number_u64(total.count));
            object.insert("actual_cents".to_owned(), number_i128(total.cents));
            object
        };

        let operations = self
            .operations
            .iter()
            .map(|(operation, total)| {
                let mut object = total_json(total);
                object.insert("operation".to_owned(), Value::String(operation.clone()));
                Value::Object(object)
            })
            .collect();

        let mut object = json::Object::new();
        object.insert("month".to_owned(), Value::String(self.month.to_string()));
        object.insert(
            "project".to_owned(),
            Value::String(self.summary.project.clone()),
        );
        let tenant = self
            .summary
            .tenant
            .clone()
            .map_or(Value::Null, Value::String);
        object.insert("tenant_id".to_owned(), tenant);
        object.insert("operations".to_owned(), Value::Array(operations));
        object.insert("total".to_owned(), Value::Object(total_json(&self.total)));
        object.insert(
            "signatures_checked".to_owned(),
            Value::Bool(self.summary.signatures_checked),
        );
        object.insert(
            "head".to_owned(),
            Value::String(hex::encode(self.summary.head)),
        );
        object.insert("entries".to_owned(), json::number_u64(self.summary.entries));
        json::to_canonical(&Value::Object(object))
    }

    /// Formats the report as a plain-text table.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "project {}, tenant {}, month {} (UTC, by finalized_at_ms)\n",
            self.summary.project,
            self.summary.tenant.as_deref().unwrap_or("(no receipts)"),
            self.month
        );
        let width = self
            .operations
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max("operation".len());
        out.push_str(&format!(
            "{:<width$}  {:>8}  {:>16}\n",
            "operation", "count", "cents"
        ));
        for (operation, total) in &self.operations {
            out.push_str(&format!(
                "{operation:<width$}  {:>8}  {:>16}\n",
                total.count, total.cents
            ));
        }
        out.push_str(&format!(
            "{:<width$}  {:>8}  {:>16}\n",
            "total", self.total.count, self.total.cents
        ));
        if !self.summary.signatures_checked {
            out.push_str("receipt signatures were not checked; pass --receipt-key to check them\n");
        }
        out
    }
}

fn number_i128(value: i128) -> Value {
    match i64::try_from(value) {
        Ok(small) => json::number_i64(small),
        // The decimal text of an integer always parses as a JSON number.
        Err(_) => json::parse(value.to_string().as_bytes()).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(text: &str) -> Month {
        text.parse().expect("valid month")
    }

    #[test]
    fn epoch_is_january_1970() {
        assert_eq!(month_of_ms(0), month("1970-01"));
    }

    #[test]
    fn last_millisecond_before_epoch_is_december_1969() {
        assert_eq!(month_of_ms(-1), month("1969-12"));
    }

    #[test]
    fn month_boundaries_fall_at_utc_midnight() {
        // 2026-02-01T00:00:00Z and one millisecond before it.
        assert_eq!(month_of_ms(1_769_904_000_000), month("2026-02"));
        assert_eq!(month_of_ms(1_769_903_999_999), month("2026-01"));
    }

    #[test]
    fn leap_day_stays_in_february() {
        // 2024-02-29T12:00:00Z and 2024-03-01T00:00:00Z.
        assert_eq!(month_of_ms(1_709_208_000_000), month("2024-02"));
        assert_eq!(month_of_ms(1_709_251_200_000), month("2024-03"));
    }

    #[test]
    fn largest_safe_instant_has_a_month() {
        // 2^53 - 1 ms is in the year 287396.
        assert_eq!(month_of_ms((1 << 53) - 1).year(), 287_396);
    }

    #[test]
    fn malformed_months_rejected() {
        for text in [
            "2026-1",
            "2026-13",
            "2026-00",
            "26-01",
            "2026/01",
            "2026-01-01",
            "+026-01",
        ] {
            assert!(text.parse::<Month>().is_err(), "{text}");
        }
    }
}
