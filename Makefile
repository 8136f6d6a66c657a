# Two commands: `make run` brings the platform up, `make test` runs the suite (`make lint`: ruff and mypy).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint install install-dev static gallery bench clean translations

run: install static ## Run web + worker + beat + embedded Redis + mail catcher
	$(BIN)/python -m newsletter.devserver

test: install-dev static ## Run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Static checks, configured in pyproject.toml; offline once install-dev has run. CI runs them
# once, before the two test runs (.ci/run).
lint: install-dev ## ruff (style, import order, likely bugs) and mypy (types of the package)
	$(BIN)/ruff check .
	$(BIN)/mypy newsletter

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Front-end assets are pinned in package-lock.json and served from static/vendor (never a CDN).
static: static/vendor/.installed
static/vendor/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "newsletter: npm is needed once to install the pinned CSS (apt-get install npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor/swagger-ui
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js \
	   node_modules/swagger-ui-dist/swagger-ui.css static/vendor/swagger-ui/
	# The campaign editors (templates/admin/campaigns/_editor.html): Quill for rich text, GrapesJS
	# with its newsletter preset for the visual editor; their prebuilt dist files, no bundler.
	mkdir -p static/vendor/quill static/vendor/grapesjs
	cp node_modules/quill/dist/quill.js node_modules/quill/dist/quill.snow.css static/vendor/quill/
	cp node_modules/grapesjs/dist/grapes.min.js node_modules/grapesjs/dist/css/grapes.min.css \
	   node_modules/grapesjs-preset-newsletter/dist/index.js static/vendor/grapesjs/
	mv static/vendor/grapesjs/index.js static/vendor/grapesjs/grapesjs-preset-newsletter.js
	mkdir -p static/vendor/font-awesome/css static/vendor/font-awesome/fonts  # GrapesJS's panel icons
	cp node_modules/font-awesome/css/font-awesome.min.css static/vendor/font-awesome/css/
	cp node_modules/font-awesome/fonts/fontawesome-webfont.woff2 node_modules/font-awesome/fonts/fontawesome-webfont.woff \
	   static/vendor/font-awesome/fonts/
	touch $@

# The platform's own text in other languages (README "Languages"): extract every _() (and the services'
# sentences: Message(...) and the errors' message argument, services/messages.py) into translations/messages.pot, merge it into each translations/<lang>/LC_MESSAGES/messages.po, and
# compile the .mo files the app reads (committed, so a fresh clone needs no extra step).
# New language: .venv/bin/pybabel init -i translations/messages.pot -d translations -l xx
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ -k Message -k ValidationError:2 -k Conflict:2 \
	   -k StateConflict:2 -k AccountError:2 -k RuleError:2 --no-location --sort-output \
	   --project=newsletter -o translations/messages.pot.new .
	@# Same messages: keep the committed template and its POT-Creation-Date (update copies the date
	@# into every catalog), so a run that changes nothing leaves no diff.
	@if [ -f translations/messages.pot ] && diff -q -I '^"POT-Creation-Date: ' translations/messages.pot \
	     translations/messages.pot.new >/dev/null; then rm translations/messages.pot.new; \
	 else mv translations/messages.pot.new translations/messages.pot; fi
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d translations --statistics

# The template gallery: templates/gallery/src/*.mjml compiled with MRML into the committed
# templates/gallery/*.html (tests/services/test_gallery.py checks they agree).
gallery: install
	.venv/bin/python -c "from newsletter.services.campaigns import gallery; print(*gallery.write_all(), sep='\n')"

# The send bench (bench/README.md): limit vs tutorial Celery vs platform, N = 10k and 100k; the
# platform with tracking off, anonymous and individual, interleaved, with each mode's rate over off's
# (BENCH_ARGS='--tracking-modes ""' for the --tracking mode alone).
# BENCH_ARGS=--quick for a smoke check, --full to add 1M, --profile for py-spy, "--variants platform
# --compare REF" to measure the code at git ref REF beside today's in the same run.
BENCH_ARGS ?=
bench: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/send_bench.py $(BENCH_ARGS)

# The soak (bench/README.md "Soak", not in CI): 30 minutes of campaigns and notifications, memory
# checked for growth. SOAK_ARGS="--soak 5" for a shorter one, "--n 2000" for smaller campaigns.
SOAK_ARGS ?= --soak 30
.PHONY: soak
soak: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache .mypy_cache .ruff_cache

# The container images and the compose stack for real (tests/containers, docs/operations.md
# "Containers and Kubernetes"): builds the images from Debian packages with podman, brings
# deploy/containers/compose.yaml up with podman-compose (in a venv of its own) and sends a campaign
# through it. Slow, so not part of `make test`. Needs podman, buildah, mmdebstrap and runc (apt).
PODMAN_COMPOSE_VERSION ?= 1.0.6
.PHONY: test-containers
test-containers: install-dev
	test -x .venv-containers/bin/podman-compose || { $(PYTHON) -m venv .venv-containers && \
	    .venv-containers/bin/pip install --quiet podman-compose==$(PODMAN_COMPOSE_VERSION); }
	CONTAINERS=1 CONTAINERS_CONF=$${CONTAINERS_CONF:-$(CURDIR)/deploy/containers/containers.conf} \
	    PODMAN_COMPOSE=$(CURDIR)/.venv-containers/bin/podman-compose \
	    $(BIN)/python -m pytest tests/containers -s $(PYTEST_ARGS)
