//! Paging of list endpoints, one way for all: `page` is 1-based (default 1), `perPage` is 1–500
//! (default 50), and a page answers with its items, the total and where it is.

use serde::{Deserialize, Serialize};

/// `?page=&perPage=` of a list that takes nothing else.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

impl PageQuery {
    /// The page asked for, made valid.
    pub fn paging(&self) -> Paging {
        Paging::new(self.page, self.per_page)
    }
}

/// The page asked for, made valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u32,
    pub per_page: u32,
}

impl Paging {
    pub fn new(page: Option<u32>, per_page: Option<u32>) -> Self {
        Self {
            page: page.unwrap_or(1).max(1),
            per_page: per_page.unwrap_or(50).clamp(1, 500),
        }
    }

    /// SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }

    /// SQL `OFFSET`.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    pub fn of<T>(self, items: Vec<T>, total: i64) -> Page<T> {
        Page {
            items,
            total,
            page: self.page,
            per_page: self.per_page,
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_and_clamp_to_sane_values() {
        assert_eq!(
            Paging::new(None, None),
            Paging {
                page: 1,
                per_page: 50
            }
        );
        assert_eq!(
            Paging::new(Some(0), Some(10_000)),
            Paging {
                page: 1,
                per_page: 500
            }
        );
        let p = Paging::new(Some(3), Some(20));
        assert_eq!((p.limit(), p.offset()), (20, 40));
    }
}
