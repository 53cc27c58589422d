//! PostgreSQL, for production and for several console replicas on one database.

use super::conn::{Conn, Engine, Row, Value};
use super::StoreError;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

pub struct Postgres {
    client: postgres::Client,
    /// Prepared once per connection: the console runs the same few dozen statements.
    prepared: std::collections::HashMap<String, postgres::Statement>,
}

fn err(e: postgres::Error) -> StoreError {
    // The driver's messages carry the server's words, never the connection's password.
    StoreError::Database(match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    })
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Postgres {
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let client =
            postgres::Client::connect(url, postgres::NoTls).map_err(|e| StoreError::Open {
                what: crate::config::redact_url(url),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            prepared: Default::default(),
        })
    }
}

impl Postgres {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(st) = self.prepared.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).map_err(err)?;
        self.prepared.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

fn params(p: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for Postgres {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn execute(&mut self, sql: &str, p: &[Value]) -> Result<u64, StoreError> {
        let st = self.statement(sql)?;
        self.client.execute(&st, &params(p)).map_err(err)
    }

    fn query(&mut self, sql: &str, p: &[Value]) -> Result<Vec<Row>, StoreError> {
        let st = self.statement(sql)?;
        let rows = self.client.query(&st, &params(p)).map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = Vec::with_capacity(r.len());
            for (i, col) in r.columns().iter().enumerate() {
                let v = match *col.type_() {
                    Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(err)?.into(),
                    Type::INT4 => r
                        .try_get::<_, Option<i32>>(i)
                        .map_err(err)?
                        .map(i64::from)
                        .into(),
                    Type::INT2 => r
                        .try_get::<_, Option<i16>>(i)
                        .map_err(err)?
                        .map(i64::from)
                        .into(),
                    Type::BOOL => r
                        .try_get::<_, Option<bool>>(i)
                        .map_err(err)?
                        .map(i64::from)
                        .into(),
                    Type::FLOAT8 => r.try_get::<_, Option<f64>>(i).map_err(err)?.into(),
                    Type::FLOAT4 => r
                        .try_get::<_, Option<f32>>(i)
                        .map_err(err)?
                        .map(f64::from)
                        .into(),
                    Type::NUMERIC => {
                        return Err(StoreError::Database(format!(
                            "column {} is NUMERIC; the console's queries cast to BIGINT or DOUBLE PRECISION",
                            col.name()
                        )))
                    }
                    Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i).map_err(err)?.into(),
                    _ => r.try_get::<_, Option<String>>(i).map_err(err)?.into(),
                };
                row.push(v);
            }
            out.push(row);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(err)
    }
}
