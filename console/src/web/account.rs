//! Setting the admin password with the setup code, signing in and out, accounts and tokens.
//! The model is the gateway's (watchpost-web's `Auth`), with named accounts and roles.

use super::{Admin, ApiError, Web};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use watchpost_web::access::session_cookie;
use watchpost_web::auth::{AuthError, Principal, Role, ADMIN_USER, SESSION_COOKIE};

type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn body<T>(b: Body<T>) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        // One status for every malformed body (415 and 422 included), as the document says.
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

fn auth_error(e: AuthError) -> ApiError {
    let status = match &e {
        AuthError::BadCode => StatusCode::FORBIDDEN,
        AuthError::AlreadySetUp | AuthError::NotSetUp | AuthError::UserExists(_) => {
            StatusCode::CONFLICT
        }
        AuthError::WeakPassword | AuthError::BadUserName => StatusCode::BAD_REQUEST,
        AuthError::BadPassword => StatusCode::UNAUTHORIZED,
        AuthError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        AuthError::Damaged(_) => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::Store { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SetUpState {
    /// Whether the admin password is set (sign in) or not (first-start setup with the code
    /// from the log).
    pub set_up: bool,
}

/// Whether the console is set up: the page shows setup or sign-in.
#[utoipa::path(get, path = "/api/state", tag = "auth", responses((status = 200, body = SetUpState)))]
pub async fn api_state(State(w): State<Web>) -> Json<SetUpState> {
    Json(SetUpState {
        set_up: w.auth.is_set_up(),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SetupBody {
    code: String,
    password: String,
}

/// Spends the one-time setup code from the log to set the `admin` password.
#[utoipa::path(post, path = "/api/setup", tag = "auth", request_body = SetupBody, responses((status = 204), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub async fn api_setup(State(w): State<Web>, b: Body<SetupBody>) -> Result<StatusCode, ApiError> {
    let b = body(b)?;
    let auth = w.auth.clone();
    tokio::task::spawn_blocking(move || auth.setup(&b.code, &b.password))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(auth_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    /// `admin` when absent.
    #[serde(default)]
    user: Option<String>,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub user: String,
    pub role: String,
    /// Send back as `X-CSRF-Token` on every request that changes something.
    pub csrf: String,
}

fn role_name(r: Role) -> String {
    match r {
        Role::Admin => "admin".into(),
        Role::Viewer => "viewer".into(),
    }
}

/// Signs in (rate-limited per address); sets an HttpOnly, Secure, SameSite=Strict cookie.
#[utoipa::path(post, path = "/api/login", tag = "auth", request_body = LoginBody, responses((status = 200, body = SessionInfo), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 429, body = ApiError)))]
pub async fn api_login(
    State(w): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    b: Body<LoginBody>,
) -> Result<Response, ApiError> {
    let b = body(b)?;
    let auth = w.auth.clone();
    let user = b.user.unwrap_or_else(|| ADMIN_USER.to_string());
    let u = user.clone();
    let (session, csrf) =
        tokio::task::spawn_blocking(move || auth.login_as(peer.ip(), &u, &b.password))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
            .map_err(auth_error)?;
    let role = w
        .auth
        .session(&session)
        .map(|p| p.role())
        .unwrap_or(Role::Viewer);
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=43200"
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(SessionInfo {
            user,
            role: role_name(role),
            csrf,
        }),
    )
        .into_response())
}

/// Ends this session.
#[utoipa::path(post, path = "/api/logout", tag = "auth", responses((status = 204)))]
pub async fn api_logout(State(w): State<Web>, headers: HeaderMap) -> Response {
    if let Some(s) = session_cookie(&headers) {
        w.auth.logout(&s);
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response()
}

/// The signed-in session (for the page after a reload), or 401.
#[utoipa::path(get, path = "/api/session", tag = "auth", responses((status = 200, body = SessionInfo), (status = 401, body = ApiError)))]
pub async fn api_session(
    State(w): State<Web>,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, ApiError> {
    match session_cookie(&headers).and_then(|s| w.auth.session(&s)) {
        Some(Principal::Session { csrf, user, role }) => Ok(Json(SessionInfo {
            user,
            role: role_name(role),
            csrf,
        })),
        _ => Err(ApiError::new(StatusCode::UNAUTHORIZED, "not signed in")),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Account {
    pub name: String,
    pub role: String,
}

/// The accounts (names and roles).
#[utoipa::path(get, path = "/api/users", tag = "auth", responses((status = 200, body = [Account]), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_users(
    State(w): State<Web>,
    headers: HeaderMap,
) -> Result<Json<Vec<Account>>, ApiError> {
    // Reading the account list is an admin's business too.
    let p = watchpost_web::access::principal(&w.auth, &headers, false)
        .map_err(|d| ApiError::new(d.status, d.message))?;
    if p.role() != Role::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "admins only"));
    }
    Ok(Json(
        w.auth
            .users()
            .into_iter()
            .map(|(name, role)| Account {
                name,
                role: role_name(role),
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Viewer,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Admin => Role::Admin,
            RoleName::Viewer => Role::Viewer,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewAccount {
    name: String,
    role: RoleName,
    password: String,
}

/// Adds an account (admins only).
#[utoipa::path(post, path = "/api/users", tag = "auth", request_body = NewAccount, responses((status = 201), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_add_user(
    State(w): State<Web>,
    Admin(who): Admin,
    b: Body<NewAccount>,
) -> Result<StatusCode, ApiError> {
    let b = body(b)?;
    let auth = w.auth.clone();
    let name = b.name.clone();
    tokio::task::spawn_blocking(move || auth.add_user(&b.name, b.role.into(), &b.password))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(auth_error)?;
    tracing::info!(by = who.name(), account = %name, "account added");
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenBody {
    name: String,
    /// `admin` when absent.
    #[serde(default)]
    role: Option<RoleName>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NewToken {
    pub name: String,
    /// Shown once; only its hash is kept.
    pub token: String,
}

/// Makes an API token (admins, signed in: tokens do not mint tokens).
#[utoipa::path(post, path = "/api/tokens", tag = "auth", request_body = TokenBody, responses((status = 200, body = NewToken), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_token(
    State(w): State<Web>,
    Admin(who): Admin,
    b: Body<TokenBody>,
) -> Result<Json<NewToken>, ApiError> {
    let b = body(b)?;
    if matches!(who, Principal::Token { .. }) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sign in to create API tokens",
        ));
    }
    let role = b.role.map_or(Role::Admin, Role::from);
    let token = w.auth.create_token_for(&b.name, role).map_err(auth_error)?;
    Ok(Json(NewToken {
        name: b.name,
        token,
    }))
}
