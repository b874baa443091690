"""FastAPI + fastapi-users: JWT strategy, Bearer transport, users in SQLite (SQLAlchemy adapter).

Set up as its docs show (``current_user(active=True)`` loads the user from the database on
every request); the login route issues a token for a fixed user without a password check.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any

import _env
from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy import create_engine, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


DB = _env.db_path("fastapi-users")
USER_UUID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _prepare_database() -> None:
    """Create the table and the fixed user (sync engine: runs at import, inside or outside a loop)."""
    engine = create_engine(f"sqlite:///{DB}")
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        if connection.execute(select(User.id).where(User.id == USER_UUID)).first() is None:
            connection.execute(
                insert(User).values(
                    id=USER_UUID, email="bench@example.com", hashed_password="-", is_active=True
                )
            )
    engine.dispose()


_prepare_database()
async_engine = create_async_engine(f"sqlite+aiosqlite:///{DB}")
session_maker = async_sessionmaker(async_engine, expire_on_commit=False)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with session_maker() as session:
        yield session


async def get_user_db(
    session: AsyncSession = Depends(get_async_session),  # noqa: B008
) -> AsyncGenerator[SQLAlchemyUserDatabase[User, uuid.UUID], None]:
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = _env.HS_SECRET
    verification_token_secret = _env.HS_SECRET


async def get_user_manager(
    user_db: SQLAlchemyUserDatabase[User, uuid.UUID] = Depends(get_user_db),  # noqa: B008
) -> AsyncGenerator[UserManager, None]:
    yield UserManager(user_db)


def get_jwt_strategy() -> JWTStrategy[User, uuid.UUID]:
    if _env.ALG == "RS256":
        return JWTStrategy(
            secret=_env.signing_key(),
            lifetime_seconds=3600,
            algorithm="RS256",
            public_key=_env.verifying_key(),
        )
    return JWTStrategy(secret=_env.HS_SECRET, lifetime_seconds=3600)


auth_backend = AuthenticationBackend(
    name="jwt", transport=BearerTransport(tokenUrl="auth/jwt/login"), get_strategy=get_jwt_strategy
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])
current_active_user = fastapi_users.current_user(active=True)
app = FastAPI()
_FIXED_USER = User(id=USER_UUID, email="bench@example.com", hashed_password="-", is_active=True)


@app.get("/protected")
async def protected(user: User = Depends(current_active_user)) -> dict[str, Any]:  # noqa: B008
    return {"ok": True, "user": str(user.id)}


@app.post("/login")
async def login() -> Any:
    """The backend's own login (token + Bearer response) for a fixed user, no password check."""
    return await auth_backend.login(get_jwt_strategy(), _FIXED_USER)
