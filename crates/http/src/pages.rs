//! Server-rendered pages (Tera, embedded in the binary, compiled once at start-up; any of them
//! may be replaced file by file from `views.templates_dir`). Every page gets a CSP that allows
//! exactly its own inline stylesheet and nothing else: no scripts, no third-party resources.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use base64::Engine as _;
use tera::{Context, Tera};
use tracing_actix_web::RequestId;

use crate::flows::link_select::SelectView;
use crate::flows::link_verify::VerifyView;
use crate::routes::local::LocalView;

/// The templates in the binary, by file name.
const EMBEDDED: [(&str, &str); 19] = [
    ("base.html", include_str!("../../../templates/base.html")),
    ("error.html", include_str!("../../../templates/error.html")),
    (
        "link_select.html",
        include_str!("../../../templates/link_select.html"),
    ),
    (
        "link_verify.html",
        include_str!("../../../templates/link_verify.html"),
    ),
    (
        "local_sign_in.html",
        include_str!("../../../templates/local_sign_in.html"),
    ),
    (
        "local_sign_up.html",
        include_str!("../../../templates/local_sign_up.html"),
    ),
    (
        "local_verify_email.html",
        include_str!("../../../templates/local_verify_email.html"),
    ),
    (
        "local_reset.html",
        include_str!("../../../templates/local_reset.html"),
    ),
    (
        "local_reset_confirm.html",
        include_str!("../../../templates/local_reset_confirm.html"),
    ),
    ("style.css", include_str!("../../../templates/style.css")),
    (
        "admin/base.html",
        include_str!("../../../templates/admin/base.html"),
    ),
    (
        "admin/login.html",
        include_str!("../../../templates/admin/login.html"),
    ),
    (
        "admin/users.html",
        include_str!("../../../templates/admin/users.html"),
    ),
    (
        "admin/user.html",
        include_str!("../../../templates/admin/user.html"),
    ),
    (
        "admin/delete.html",
        include_str!("../../../templates/admin/delete.html"),
    ),
    (
        "admin/signed_in.html",
        include_str!("../../../templates/admin/signed_in.html"),
    ),
    (
        "dev/idp_authorize.html",
        include_str!("../../../templates/dev/idp_authorize.html"),
    ),
    (
        "dev/app.html",
        include_str!("../../../templates/dev/app.html"),
    ),
    (
        "dev/app_callback.html",
        include_str!("../../../templates/dev/app_callback.html"),
    ),
];

/// Settings of the pages (`[views]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewSettings {
    /// A folder whose files replace the embedded templates of the same name (`error.html`,
    /// `link_select.html`, `style.css`, `email/verification_code.html`, `sms/…`, ...); files it
    /// lacks keep the embedded version.
    pub templates_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    #[error("cannot read {path}: {kind}")]
    Read {
        path: String,
        kind: std::io::ErrorKind,
    },
    #[error(transparent)]
    Template(#[from] tera::Error),
}

/// Each embedded template, or its replacement from `views.templates_dir` when that folder has
/// a file of the same (relative) name.
pub fn template_sources<'a>(
    embedded: &[(&'a str, &str)],
    settings: &ViewSettings,
) -> Result<Vec<(&'a str, String)>, PagesError> {
    let mut sources = Vec::with_capacity(embedded.len());
    for (name, builtin) in embedded {
        let source = match &settings.templates_dir {
            Some(dir) if dir.join(name).is_file() => {
                let path = dir.join(name);
                std::fs::read_to_string(&path).map_err(|e| PagesError::Read {
                    path: path.display().to_string(),
                    kind: e.kind(),
                })?
            }
            _ => (*builtin).to_owned(),
        };
        sources.push((*name, source));
    }
    Ok(sources)
}

pub struct Pages {
    tera: Tera,
    style: String,
    csp: String,
    /// `braid serve --dev`: every page says it is not for production.
    dev_banner: bool,
}

impl Pages {
    /// Every template compiled now: a broken override stops the start, naming the file.
    pub fn new(settings: &ViewSettings) -> Result<Self, PagesError> {
        let sources = template_sources(&EMBEDDED, settings)?;
        let style = sources
            .iter()
            .find(|(name, _)| *name == "style.css")
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        let mut tera = Tera::default();
        tera.add_raw_templates(
            sources
                .into_iter()
                .filter(|(name, _)| name.ends_with(".html")),
        )?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, style.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        );
        Ok(Self {
            tera,
            style,
            csp,
            dev_banner: false,
        })
    }

    /// Pages of a development instance carry a "not for production" banner.
    pub fn with_dev_banner(mut self, on: bool) -> Self {
        self.dev_banner = on;
        self
    }

    /// A page of the development instance (see [`crate::dev`]).
    pub(crate) fn render_page(
        &self,
        status: StatusCode,
        template: &str,
        ctx: Context,
    ) -> HttpResponse {
        self.render(status, template, ctx)
    }

    fn render(&self, status: StatusCode, template: &str, ctx: Context) -> HttpResponse {
        self.render_with(status, template, ctx, &self.csp)
    }

    /// The CSP of a page whose forms end in a redirect to the app: browsers apply
    /// `form-action` to the redirects that follow a submitted form too, so the app's redirect
    /// target must be allowed besides Braid itself. `app_target` is a registered redirect
    /// URI (configuration, not request input).
    fn csp_towards(&self, app_target: &str) -> String {
        let Some(source) = form_target_source(app_target) else {
            return self.csp.clone();
        };
        self.csp.replace(
            "form-action 'self'",
            &format!("form-action 'self' {source}"),
        )
    }

    fn render_with(
        &self,
        status: StatusCode,
        template: &str,
        mut ctx: Context,
        csp: &str,
    ) -> HttpResponse {
        ctx.insert("style", &self.style);
        ctx.insert("dev_banner", &self.dev_banner);
        match self.tera.render(template, &ctx) {
            Ok(body) => HttpResponse::build(status)
                .insert_header((header::CONTENT_SECURITY_POLICY, csp))
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
        self.error_page(req, status, (title, message), back, "Start again")
    }

    /// An error page of the admin console, with a way back to `back` (a console path).
    pub fn admin_error(
        &self,
        req: &HttpRequest,
        status: StatusCode,
        title: &str,
        message: &str,
        back: &str,
    ) -> HttpResponse {
        self.error_page(req, status, (title, message), Some(back), "Back")
    }

    fn error_page(
        &self,
        req: &HttpRequest,
        status: StatusCode,
        (title, message): (&str, &str),
        back: Option<&str>,
        back_label: &str,
    ) -> HttpResponse {
        let mut ctx = Context::new();
        ctx.insert("title", title);
        ctx.insert("message", message);
        ctx.insert("back", &back);
        ctx.insert("back_label", back_label);
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        ctx.insert("request_id", &request_id);
        self.render(status, "error.html", ctx)
    }

    /// The account choice of a manual link.
    pub fn link_select(&self, view: &SelectView, problem: Option<&str>) -> HttpResponse {
        let mut ctx = Context::new();
        ctx.insert("view", view);
        ctx.insert("problem", &problem);
        let csp = self.csp_towards(&view.app_target);
        self.render_with(StatusCode::OK, "link_select.html", ctx, &csp)
    }

    /// The password or code prompt of a manual link.
    pub fn link_verify(
        &self,
        status: StatusCode,
        view: &VerifyView,
        select_path: &str,
        notice: Option<&str>,
        problem: Option<&str>,
    ) -> HttpResponse {
        let mut ctx = Context::new();
        ctx.insert("view", view);
        ctx.insert("select_path", select_path);
        ctx.insert("notice", &notice);
        ctx.insert("problem", &problem);
        let csp = self.csp_towards(&view.app_target);
        self.render_with(status, "link_verify.html", ctx, &csp)
    }

    /// A page of local accounts (`local_*.html`): sign-in, sign-up, address confirmation,
    /// password reset.
    pub fn local(
        &self,
        status: StatusCode,
        template: &str,
        view: &LocalView,
        notice: Option<&str>,
        problem: Option<&str>,
    ) -> HttpResponse {
        let mut ctx = Context::new();
        ctx.insert("view", view);
        ctx.insert("notice", &notice);
        ctx.insert("problem", &problem);
        let csp = self.csp_towards(&view.app_target);
        self.render_with(status, template, ctx, &csp)
    }

    /// A sign-in that cannot be linked to the chosen account (`link_conflict`).
    pub fn conflict(&self, req: &HttpRequest, back: Option<&str>) -> HttpResponse {
        self.error(
            req,
            StatusCode::CONFLICT,
            "This sign-in cannot be added to that account",
            "It is already connected to an account, or the account you chose can no longer take it. Nothing was changed. (Error code: link_conflict)",
            back,
        )
    }
}

/// A CSP source expression for where an app's redirect URI points: its origin for http(s)
/// (browsers match `form-action` redirects by origin), its scheme for a native app's private
/// scheme (`com.example.app:`). `None` for anything that is neither.
fn form_target_source(target: &str) -> Option<String> {
    let url = url::Url::parse(target).ok()?;
    match url.scheme() {
        "https" | "http" => {
            let origin = url.origin().ascii_serialization();
            (origin != "null").then_some(origin)
        }
        scheme
            if scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            Some(format!("{scheme}:"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn page_body(res: HttpResponse) -> String {
        let bytes = actix_web::body::to_bytes(res.into_body()).await;
        String::from_utf8(bytes.map_err(|_| ()).unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_template_in_templates_dir_replaces_the_embedded_one_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("error.html"),
            "<p>Our own words: {{ title }}</p>",
        )
        .unwrap();
        let pages = Pages::new(&ViewSettings {
            templates_dir: Some(dir.path().to_owned()),
        })
        .unwrap();
        let req = actix_web::test::TestRequest::default().to_http_request();
        let body = page_body(pages.error(&req, StatusCode::BAD_REQUEST, "Oops", "m", None)).await;
        assert_eq!(body, "<p>Our own words: Oops</p>");
        let embedded = Pages::new(&ViewSettings::default()).unwrap();
        let body =
            page_body(embedded.error(&req, StatusCode::BAD_REQUEST, "Oops", "m", None)).await;
        assert!(body.contains("<h1>Oops</h1>"), "{body}");
    }

    #[test]
    fn a_broken_template_in_templates_dir_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("link_select.html"), "{% if %}").unwrap();
        let err = Pages::new(&ViewSettings {
            templates_dir: Some(dir.path().to_owned()),
        });
        assert!(err.is_err());
    }

    #[test]
    fn a_forms_redirect_to_the_app_is_allowed_by_origin_or_private_scheme() {
        assert_eq!(
            form_target_source("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            form_target_source("http://127.0.0.1:5173/callback").as_deref(),
            Some("http://127.0.0.1:5173")
        );
        assert_eq!(
            form_target_source("com.example.app:/oauth").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(form_target_source("not a url"), None);
    }
}
