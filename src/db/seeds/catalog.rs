//! The shape of the tables a seed set writes: columns, types, generated columns and primary
//! key, read from `pg_catalog` in one query.

use std::collections::HashMap;

use tokio_postgres::GenericClient;

use crate::db::state::unnamed;
use crate::seeds::value::Kind;

/// A table as the loader needs to know it.
#[derive(Debug, Clone)]
pub struct TableShape {
    pub schema: String,
    pub name: String,
    /// In `attnum` order.
    pub columns: Vec<ColumnShape>,
    /// Primary-key column names in key order; empty when the table has none.
    pub primary_key: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ColumnShape {
    pub name: String,
    /// As `format_type` writes it (schema-qualified when not on the search path), so it can
    /// be used in a cast.
    pub type_name: String,
    /// The type values are cast to. Character types lose their length: an explicit cast to
    /// `varchar(n)` truncates silently, while the assignment that follows reports it.
    pub cast_type: String,
    pub kind: Kind,
    /// `GENERATED ALWAYS AS (...) STORED`: never written by seeds.
    pub generated: bool,
    /// `GENERATED ALWAYS AS IDENTITY`: written only with `OVERRIDING SYSTEM VALUE`.
    pub identity_always: bool,
    /// The sequence of an identity or serial column, as `pg_get_serial_sequence` names it.
    pub sequence: Option<String>,
}

impl TableShape {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn column(&self, name: &str) -> Option<(usize, &ColumnShape)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }
}

const COLUMNS: &str = "
SELECT q.nsp, q.rel, a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       t.typcategory::text,
       CASE WHEN t.typcategory = 'A' THEN pg_catalog.format_type(t.typelem, NULL) END,
       CASE WHEN t.typcategory = 'A' THEN et.typcategory::text END,
       a.attgenerated <> '',
       a.attidentity = 'a',
       coalesce(pg_catalog.array_position(pk.conkey, a.attnum), 0),
       CASE WHEN t.typcategory = 'S' OR et.typcategory = 'S'
            THEN pg_catalog.format_type(a.atttypid, NULL)
            ELSE pg_catalog.format_type(a.atttypid, a.atttypmod) END,
       pg_catalog.pg_get_serial_sequence(pg_catalog.format('%I.%I', q.nsp, q.rel), a.attname)
FROM unnest($1::text[], $2::text[]) AS q(nsp, rel)
JOIN pg_catalog.pg_namespace n ON n.nspname = q.nsp
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = q.rel
                           AND c.relkind IN ('r', 'p')
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type et ON et.oid = t.typelem
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
ORDER BY q.nsp, q.rel, a.attnum";

/// The shapes of the named tables, keyed by `schema.table`; a table that does not exist (or
/// is a view) is simply absent.
pub async fn tables(
    client: &impl GenericClient,
    names: &[(String, String)],
) -> anyhow::Result<HashMap<String, TableShape>> {
    let schemas: Vec<&str> = names.iter().map(|(s, _)| s.as_str()).collect();
    let relations: Vec<&str> = names.iter().map(|(_, t)| t.as_str()).collect();
    let rows = unnamed(client, COLUMNS, &[&schemas, &relations]).await?;
    let mut shapes: HashMap<String, TableShape> = HashMap::new();
    let mut keys: HashMap<String, Vec<(i32, String)>> = HashMap::new();
    for row in rows {
        let schema: String = row.get(0);
        let name: String = row.get(1);
        let qualified = format!("{schema}.{name}");
        let column: String = row.get(2);
        let type_name: String = row.get(3);
        let category: String = row.get(4);
        let element_type: Option<String> = row.get(5);
        let element_category: Option<String> = row.get(6);
        let key_position: i32 = row.get(9);
        let kind = Kind::of(
            &type_name,
            &category,
            element_type.as_deref().zip(element_category.as_deref()),
        );
        if key_position > 0 {
            keys.entry(qualified.clone())
                .or_default()
                .push((key_position, column.clone()));
        }
        shapes
            .entry(qualified)
            .or_insert_with(|| TableShape {
                schema,
                name,
                columns: Vec::new(),
                primary_key: Vec::new(),
            })
            .columns
            .push(ColumnShape {
                name: column,
                type_name,
                cast_type: row.get(10),
                kind,
                generated: row.get(7),
                identity_always: row.get(8),
                sequence: row.get(11),
            });
    }
    for (table, mut key) in keys {
        key.sort();
        if let Some(shape) = shapes.get_mut(&table) {
            shape.primary_key = key.into_iter().map(|(_, c)| c).collect();
        }
    }
    Ok(shapes)
}
