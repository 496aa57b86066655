"""The account forms. Field names follow the Flask Mega-Tutorial so scripts keep working."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp

from shared.models import User
from web.auth.password_policy import MAX_LENGTH as PASSWORD_MAX_LENGTH
from web.auth.password_policy import PasswordPolicy


def _strip(value: str | None) -> str | None:
    """People paste addresses with stray spaces; the validators should not see them."""
    return value.strip() if isinstance(value, str) else value


def _password_rules() -> list[object]:
    """The same rules on registration and reset: see `password_policy`."""
    return [DataRequired(), PasswordPolicy()]


class LoginForm(FlaskForm):
    username = StringField(
        "Username", filters=[_strip], validators=[DataRequired(), Length(max=64)]
    )
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=PASSWORD_MAX_LENGTH)]
    )
    remember_me = BooleanField("Remember Me")
    submit = SubmitField("Sign In")


class RegistrationForm(FlaskForm):
    username = StringField(
        "Username",
        filters=[_strip],
        validators=[
            DataRequired(),
            Length(min=3, max=64),
            Regexp(r"^[A-Za-z0-9_.-]+$", message="Use letters, digits, '.', '_' or '-'."),
        ],
    )
    email = EmailField(
        "Email", filters=[_strip], validators=[DataRequired(), Email(), Length(max=254)]
    )
    password = PasswordField("Password", validators=_password_rules())
    password2 = PasswordField(
        "Repeat Password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )
    submit = SubmitField("Register")


class ResetPasswordRequestForm(FlaskForm):
    email = EmailField(
        "Email", filters=[_strip], validators=[DataRequired(), Email(), Length(max=254)]
    )
    submit = SubmitField("Reset Password")


class ResetPasswordForm(FlaskForm):
    # The account the link opened, for the rule against reusing its username or address.
    account: User | None = None

    password = PasswordField("New Password", validators=_password_rules())
    password2 = PasswordField(
        "Repeat Password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )
    submit = SubmitField("Set New Password")
