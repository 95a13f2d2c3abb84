//! Server-rendered pages (Tera, embedded in the binary). Every page gets a CSP that allows
//! exactly its own inline stylesheet and nothing else: no scripts, no third-party resources.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use base64::Engine as _;
use tera::{Context, Tera};
use tracing_actix_web::RequestId;

const STYLE: &str = include_str!("../../../templates/style.css");

pub struct Pages {
    tera: Tera,
    csp: String,
}

impl Pages {
    pub fn new() -> Result<Self, tera::Error> {
        let mut tera = Tera::default();
        tera.add_raw_templates(vec![
            ("base.html", include_str!("../../../templates/base.html")),
            ("error.html", include_str!("../../../templates/error.html")),
        ])?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        );
        Ok(Self { tera, csp })
    }

    fn render(&self, status: StatusCode, template: &str, mut ctx: Context) -> HttpResponse {
        ctx.insert("style", STYLE);
        match self.tera.render(template, &ctx) {
            Ok(body) => HttpResponse::build(status)
                .insert_header((header::CONTENT_SECURITY_POLICY, self.csp.as_str()))
                .content_type("text/html; charset=utf-8")
                .body(body),
            Err(e) => {
                tracing::error!(error = %e, template, "page rendering failed");
                HttpResponse::build(status)
                    .content_type("text/plain; charset=utf-8")
                    .body("Something went wrong.")
            }
        }
    }

    /// An error page: what happened in words, a way back, and the request id to quote.
    pub fn error(
        &self,
        req: &HttpRequest,
        status: StatusCode,
        title: &str,
        message: &str,
        back: Option<&str>,
    ) -> HttpResponse {
        let mut ctx = Context::new();
        ctx.insert("title", title);
        ctx.insert("message", message);
        ctx.insert("back", &back);
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        ctx.insert("request_id", &request_id);
        self.render(status, "error.html", ctx)
    }
}
