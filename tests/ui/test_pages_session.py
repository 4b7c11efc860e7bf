"""Signing in and out, the sign-in gate, expired logins, an unreachable server, Home and Architecture."""

from __future__ import annotations

from limner.ui import navigation
from tests.api.live_server import free_port
from tests.ui.conftest import ADMIN, PASSWORD, AppFactory, assert_clean, messages


def test_sign_in_then_home_shows_the_server(studio: AppFactory) -> None:
    at = studio(signed_in=False)
    assert [title.value for title in at.title] == ["limner studio"]
    at.text_input(key="login.username").input(ADMIN)
    at.text_input(key="login.password").input(PASSWORD)
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert_clean(at)
    assert at.session_state["user"].username == ADMIN
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Status"] == "ready"
    assert "Queue" in metrics
    assert any("Your latest pictures" in header.value for header in at.subheader)


def test_wrong_password_is_shown_as_a_sentence(studio: AppFactory) -> None:
    at = studio(signed_in=False)
    at.text_input(key="login.username").input(ADMIN)
    at.text_input(key="login.password").input("wrong password")
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert_clean(at)
    assert messages(at) == ["The username or password is wrong. Check both and try again."]
    assert "token" not in at.session_state


def test_protected_page_shows_the_sign_in_form_until_signed_in(studio: AppFactory) -> None:
    at = studio(navigation.GALLERY, signed_in=False)
    assert [title.value for title in at.title] == ["limner studio"]
    assert at.text_input(key="login.username") is not None
    public = studio(navigation.ARCHITECTURE, signed_in=False)
    assert [title.value for title in public.title] == ["How limner makes pictures"]


def test_registration_closed_is_explained(studio: AppFactory) -> None:
    at = studio(signed_in=False)
    at.text_input(key="register.username").input("newcomer")
    at.text_input(key="register.password").input("a long enough password")
    at.button(key="FormSubmitter:register-Create account").click().run()
    assert_clean(at)
    assert messages(at) == ["Registration is closed on this server; ask an admin for an account."]


def test_expired_token_sends_back_to_sign_in_with_a_note(studio: AppFactory) -> None:
    at = studio(navigation.GALLERY)
    at.session_state["token"] = "expired.or.forged"
    at.run()
    assert_clean(at)
    assert "token" not in at.session_state
    assert any("please sign in again" in warning for warning in messages(at, "warning"))


def test_sign_out(studio: AppFactory) -> None:
    at = studio(navigation.HOME)
    at.sidebar.button[0].click().run()
    assert "token" not in at.session_state
    assert messages(at, "warning") == ["Signed out."]


def test_unreachable_server_is_a_message_not_a_traceback(studio: AppFactory) -> None:
    at = studio(signed_in=False)
    at.session_state["api_url"] = f"http://127.0.0.1:{free_port()}"
    at.text_input(key="login.username").input(ADMIN)
    at.text_input(key="login.password").input(PASSWORD)
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert_clean(at)
    assert len(messages(at)) == 1
    assert messages(at)[0].startswith("The studio cannot reach the limner server at http://127.0.0.1:")


def test_architecture_page_has_its_diagrams(studio: AppFactory) -> None:
    at = studio(navigation.ARCHITECTURE)
    assert_clean(at)
    charts = at.get("graphviz_chart")
    assert len(charts) == 6
    assert len(at.image) == 1  # the generated noise strip
    headings = [header.value for header in at.subheader]
    assert headings == [
        "Image-to-image",
        "Inpainting",
        "Instruction edits (InstructPix2Pix)",
        "Characters (IP-Adapter)",
        "LoRA: small add-ons for big models",
    ]
