from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from unlinker.accounts.roles import BROWSE


@permission_required(BROWSE, raise_exception=True)
def history(request):
    return render(
        request,
        "core/placeholder.html",
        {
            "title": "Task history",
            "lead": "Every unlink batch: who asked, when, and what each step did.",
        },
    )
