"""Upload endpoints: receiving a file (streamed), its live processing state, and removing it."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.catalog import creators, items
from app.catalog.models import VERSIONED_TYPES, Creator, Item, ItemVersion
from app.catalog.views import Req, cover_url, me_creator, my_item
from app.db.engine import Db
from app.media import uploads
from app.media.models import Upload
from app.media.receive import receive_file
from app.web.errors import AppError
from app.web.flash import flash


async def _upload_fragment(request: Req, db: Db, upload: Upload, status_code: int = 200) -> Template:
    return Template(template_name="media/_upload.html", status_code=status_code, context={
        "upload": upload,
        "removable": await uploads.removable(db, upload),
        "thumb": cover_url(request, upload, 320) if upload.purpose in ("cover", "avatar") else None,
    })


async def _receive(request: Req, db: Db, creator: Creator, item: Item | None, purpose: str,
                   version: ItemVersion | None) -> Upload:
    """Stream the body to a temporary file under the tier's per-file limit, then record and queue it."""
    settings = request.app.state.settings
    limit = creators.tier_in_force(creator, settings).per_file_bytes
    await db.commit()  # no database connection is held while the bytes arrive (a big file can take minutes)
    received = await receive_file(request, settings.var_dir / "tmp" / "uploads", limit, settings.secret_key)
    try:
        creator = await creators.require(db, creator.user_id)
        upload = await uploads.register(db, settings, creator, item, purpose, version, received.filename,
                                        received.size, received.path)
        await db.commit()
    except BaseException:
        received.path.unlink(missing_ok=True)
        raise
    return upload


# The body is a stream we parse ourselves (CSRF included), so Litestar's CSRF middleware, which would read the
# whole multipart form first, is skipped here, and there is no framework body limit: the tier's limit applies.
@post("/creator/items/{public_id:str}/uploads", exclude_from_csrf=True, request_max_body_size=None)
async def upload_file(
    request: Req, db: Db, public_id: FromPath[str], purpose: FromQuery[str] = "file"
) -> Response[Any]:
    creator, item = await my_item(request, db, public_id)
    if purpose not in ("file", "cover", "preview"):
        raise AppError("Unknown kind of upload.")
    if purpose == "preview" and item.type not in ("audio", "video"):
        raise AppError("Only audio and video items have a preview clip.")
    version = None
    if purpose == "file":
        if item.type not in VERSIONED_TYPES:
            raise AppError("Text items have no files; write the text on the Details step.")
        version = await items.draft_version(db, item)
        if version is None:
            raise AppError("Start a new version before adding files; published versions cannot change.")
    upload = await _receive(request, db, creator, item, purpose, version)
    if request.headers.get("hx-request") == "true":
        return await _upload_fragment(request, db, upload, 201)
    flash(request, f"{upload.filename} is uploaded and being checked.")
    return Redirect(f"/creator/items/{item.public_id}/files", status_code=303)


@post("/creator/avatar", exclude_from_csrf=True, request_max_body_size=None)
async def upload_avatar(request: Req, db: Db) -> Response[Any]:
    """The creator's picture: received like any upload, checked and thumbnailed like a cover."""
    upload = await _receive(request, db, await me_creator(request, db), None, "avatar", None)
    if request.headers.get("hx-request") == "true":
        return await _upload_fragment(request, db, upload, 201)
    flash(request, "Your picture is uploaded and being checked.")
    return Redirect("/creator/profile", status_code=303)


@get("/creator/uploads/{public_id:str}", cache=False)
async def upload_state(request: Req, db: Db, public_id: FromPath[str]) -> Template:
    """The upload's row; while it is not final, it asks again every second (HTMX polling)."""
    creator = await me_creator(request, db)
    return await _upload_fragment(request, db, await uploads.owned(db, creator.user_id, public_id))


@post("/creator/uploads/{public_id:str}/remove")
async def remove_upload(request: Req, db: Db, public_id: FromPath[str]) -> Response[Any]:
    creator = await me_creator(request, db)
    upload = await uploads.owned(db, creator.user_id, public_id)
    item_public_id = await items.public_id_of(db, upload.item_id)
    await uploads.remove(db, upload)
    await db.commit()
    flash(request, f"{upload.filename} is removed.", "info")
    return Redirect(f"/creator/items/{item_public_id}/files", status_code=303)


ROUTES = [upload_file, upload_avatar, upload_state, remove_upload]
