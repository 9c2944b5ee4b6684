"""Inside the model in headless Chromium: draw a digit, see each convolution's maps, then the drawing as a star in the
model's map of test digits, with its nearest digits."""

from tests.test_browser import assert_healthy, browser, page, server, shoot, stroke, wait_idle  # noqa: F401 - fixtures

# Each plotted trace's name and number of points, as Plotly drew them (its full data, after decoding)
TRACES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(
    plot => (plot._fullData || []).map(trace => ({name: trace.name || '', points: trace._length})))"""


def test_a_drawing_shows_its_activation_maps_and_its_place_in_the_map(server, page, tmp_path):
    page.goto(f"{server}/inside")
    page.get_by_role("heading", name="Inside the model").wait_for(timeout=60_000)
    wait_idle(page)
    canvas = page.locator("canvas.digit-pad[data-ready]").first
    canvas.wait_for(timeout=30_000)
    stroke(page, canvas, [(140, 40), (140, 240)])  # a "1"
    page.get_by_text("Convolution 1:").first.wait_for(timeout=60_000)  # the shipped CNN: one grid per convolution
    wait_idle(page)
    assert page.get_by_text("Convolution 2:").count() >= 1 and page.get_by_text("The last hidden layer").count() >= 1
    shoot(page, tmp_path, "inside-layers")

    page.get_by_role("tab", name="Where your digit sits").click()
    page.get_by_text("Its 8 nearest test digits").wait_for(timeout=60_000)
    wait_idle(page)
    page.wait_for_function(f"() => ({TRACES})().some(t => t.name === 'your drawing')", timeout=30_000)  # drawn
    traces = {t["name"]: t["points"] for t in page.evaluate(TRACES)}
    assert traces.get("your drawing") == 1, traces  # the star
    assert traces.get("test digits", 0) >= 5000 and traces.get("nearest digits") == 8, traces
    assert_healthy(page)
    shoot(page, tmp_path, "inside-map")
