"""Server-rendered HTML pages: the sign-in page for everyone, the rest for signed-in users only."""

from fastapi import APIRouter, Depends

from webapp.http.auth import page_user
from webapp.pages import (
    account,
    docs,
    explanations,
    history,
    home,
    jobs,
    model_admin,
    model_uploads,
    models,
    uploads,
    users,
)

signed_in = APIRouter(dependencies=[Depends(page_user)])
signed_in.include_router(home.router)
signed_in.include_router(models.router)
signed_in.include_router(model_uploads.router)
signed_in.include_router(model_admin.router)
signed_in.include_router(uploads.router)
signed_in.include_router(history.router)
signed_in.include_router(jobs.router)
signed_in.include_router(explanations.router)
signed_in.include_router(account.router)
signed_in.include_router(users.router)
signed_in.include_router(docs.router)

router = APIRouter(include_in_schema=False)
router.include_router(account.public)
router.include_router(signed_in)
