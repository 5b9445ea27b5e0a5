//! A small response builder: status, headers (values that cannot be sent are skipped rather
//! than failing the request) and a body.

use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::body::{self, Body};

pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers: Vec::new(),
        }
    }

    pub fn ok() -> Reply {
        Reply::new(200)
    }

    pub fn status(mut self, status: u16) -> Reply {
        self.status = StatusCode::from_u16(status).unwrap_or(self.status);
        self
    }

    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Reply {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_ref().as_bytes()),
        ) {
            self.headers.retain(|(existing, _)| *existing != n);
            self.headers.push((n, v));
        }
        self
    }

    pub fn opt_header(self, name: &str, value: Option<impl AsRef<str>>) -> Reply {
        match value {
            Some(v) => self.header(name, v),
            None => self,
        }
    }

    pub fn body(self, body: Body) -> Response<Body> {
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        for (n, v) in self.headers {
            resp.headers_mut().insert(n, v);
        }
        resp
    }

    pub fn xml(self, doc: String) -> Response<Body> {
        let len = doc.len().to_string();
        self.header("content-type", "application/xml")
            .header("content-length", len)
            .body(body::full(doc))
    }

    /// No body. 204 and 304 carry no Content-Length at all.
    pub fn empty(self) -> Response<Body> {
        if self.status == StatusCode::NO_CONTENT || self.status == StatusCode::NOT_MODIFIED {
            return self.body(body::empty());
        }
        self.header("content-length", "0").body(body::empty())
    }
}
