"""Tests of astro_enhance.surveys: the survey table, lookup and guessing."""

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from astro_enhance import read_image
from astro_enhance.exceptions import SurveyError
from astro_enhance.surveys import SURVEYS, Survey, get_survey, guess_survey, list_surveys


def _header(scale, **cards):
    from conftest import tan_header

    h = tan_header((100, 100), scale=scale)
    for k, v in cards.items():
        h[k] = v
    return h


def test_table_values():
    assert list_surveys() == ["sdss", "decals", "des", "hsc", "ps1"]
    scales = {name: get_survey(name).pixel_scale for name in list_surveys()}
    assert scales == {"sdss": 0.396, "decals": 0.262, "des": 0.263, "hsc": 0.168, "ps1": 0.25}
    sdss = get_survey("sdss")
    assert sdss.unit == "nanomaggy" and get_survey("decals").unit == "nanomaggy"
    assert (sdss.noise["g"], sdss.noise["r"], sdss.noise["i"]) == (0.020, 0.035, 0.05)
    for s in SURVEYS.values():
        assert isinstance(s, Survey)
        for b in s.bands:
            assert 0.4 < s.psf_fwhm[b] < 2.0
            assert s.noise[b] > 0 and 20 <= s.zeropoint[b] <= 31


@pytest.mark.parametrize("band", ["g", "r", "i"])
def test_decals_noise_is_17_mag_deeper_for_point_sources(band):
    # Point-source flux error of a Gaussian PSF: sigma_pix * sqrt(4 pi) * s, s in pixels.
    def point_sigma(survey):
        s = survey.psf_fwhm[band] / 2.3548 / survey.pixel_scale
        return survey.noise[band] * math.sqrt(4 * math.pi) * s

    dmag = 2.5 * math.log10(point_sigma(get_survey("sdss")) / point_sigma(get_survey("decals")))
    assert dmag == pytest.approx(1.7, abs=0.01)


def test_get_survey_aliases_and_errors():
    assert get_survey("DECaLS").name == "decals"
    assert get_survey("legacy").name == "decals"
    assert get_survey(" Pan-STARRS ").name == "ps1"
    assert get_survey(get_survey("hsc")) is get_survey("hsc")
    with pytest.raises(SurveyError, match="unknown survey 'euclid'.*sdss, decals, des, hsc, ps1"):
        get_survey("euclid")
    assert get_survey("sdss").check_band("R") == "r"
    with pytest.raises(SurveyError, match="no band 'u'"):
        get_survey("decals").check_band("u")


@pytest.mark.parametrize("cards, scale, expect, min_conf", [
    ({"ORIGIN": "SDSS", "TELESCOP": "2.5m"}, 0.396, "sdss", 0.9),
    ({"TELESCOP": "SDSS 2.5-M"}, 0.396, "sdss", 0.9),
    ({"TELESCOP": "CTIO 4.0-m telescope", "INSTRUME": "DECam"}, 0.262, "decals", 0.5),
    ({"SURVEY": "DES", "INSTRUME": "DECam"}, 0.263, "des", 0.9),
    ({"LEGPIPEV": "DR9.6.7"}, 0.262, "decals", 0.9),
    ({"TELESCOP": "Subaru", "INSTRUME": "Hyper Suprime-Cam"}, 0.168, "hsc", 0.9),
    ({"TELESCOP": "PS1", "INSTRUME": "GPC1"}, 0.25, "ps1", 0.9),
    ({}, 0.396, "sdss", 0.4),
    ({}, 0.168, "hsc", 0.4),
])
def test_guess_survey(cards, scale, expect, min_conf):
    survey, conf, reason = guess_survey(_header(scale, **cards))
    assert survey.name == expect
    assert min_conf <= conf <= 1
    assert reason


def test_guess_survey_edge_cases(sdss_hdu):
    # Keyword says SDSS but the scale does not: lower confidence, and it says why.
    s, conf, reason = guess_survey(_header(0.262, ORIGIN="SDSS"))
    assert s.name == "sdss" and conf < 0.9 and "resampled" in reason
    # Nothing known.
    s, conf, reason = guess_survey(_header(1.5))
    assert s is None and conf == 0 and "matches no known survey" in reason
    # 'DES' must match a word, not 'MODES' or 'DESI'.
    s, _, _ = guess_survey(_header(1.5, SURVEY="DESI-MODES"))
    assert s is None
    # An astro_enhance output is on its target grid.
    s, conf, reason = guess_survey(_header(0.262, ORIGIN="SDSS", AE_TGT="decals"))
    assert s.name == "decals" and "AE_TGT" in reason
    # WCS only, Image and HDU inputs.
    assert guess_survey(WCS(_header(0.25)))[0].name == "ps1"
    assert guess_survey(read_image(sdss_hdu))[0].name == "sdss"
    assert guess_survey(sdss_hdu)[0].name == "sdss"
    assert guess_survey(fits.Header()) == (None, 0.0, "no telescope keyword and no celestial WCS")
    with pytest.raises(TypeError):
        guess_survey(np.zeros(3))


@pytest.mark.realdata
def test_guess_real_sdss_frame(sdss_frame_r):
    survey, conf, reason = guess_survey(fits.getheader(sdss_frame_r))
    assert survey.name == "sdss" and conf >= 0.9, reason
