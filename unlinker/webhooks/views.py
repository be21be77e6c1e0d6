"""POST /webhooks/xero/: Xero's signed deliveries. No login (Xero cannot log in) and no CSRF
token (Xero cannot send one): the signature is the authentication. It only stores and queues,
so that it answers within Xero's 5 seconds whatever the broker is doing."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services


@csrf_exempt  # the only view without CSRF (tests/security): the HMAC signature stands for it
@login_not_required
@require_POST
def xero(request):
    raw = request.body
    if not services.signature_ok(
        raw, request.headers.get("x-xero-signature", ""), settings.XERO_WEBHOOK_KEY
    ):
        return HttpResponse(status=401)  # also how the intent-to-receive check wants it
    try:
        services.receive(raw)
    except services.Malformed:
        return HttpResponse(status=400)
    return HttpResponse(status=200)  # an empty body, as Xero asks
