from django.conf import settings

# Everything the pages load is served by us: htmx is vendored, no script or style is inline.
DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def allow_form_action(response, origins):
    """Let the forms of this one page go (or be redirected) to `origins` as well as to us.

    Chromium applies form-action to every redirect that follows a form's submission, so a form
    that posts to our own OAuth start view, which answers with a redirect to the provider's
    consent page, is blocked unless the provider's origin is listed. Only the page that carries
    such forms gets the wider directive; every other page keeps `form-action 'self'`."""
    already = getattr(response, "csp_form_action", ())
    response.csp_form_action = tuple(dict.fromkeys([*already, *origins]))
    return response


def with_form_action(policy: str, origins) -> str:
    if not origins:
        return policy
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    extra = " ".join(origins)
    for i, directive in enumerate(directives):
        if directive.split()[0] == "form-action":
            directives[i] = f"{directive} {extra}"
            break
    else:
        directives.append(f"form-action 'self' {extra}")
    return "; ".join(directives)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        # The admin's own pages carry inline scripts of Django's; they keep Django's defaults.
        if not request.path.startswith("/admin/"):
            policy = with_form_action(self.policy, getattr(response, "csp_form_action", ()))
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
