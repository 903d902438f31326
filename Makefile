# The two commands of the README: `make demo` (the product's main job, end to end on the shipped
# corpus) and `make test` (the whole test suite). Each creates .venv when missing and installs into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RACKVAE_MIDI ?= data/midi
DEMO := out/demo
export RACKVAE_MIDI

# Reinstall when the package definition or the C core (compiled into rackvae._core) changes.
INSTALL_INPUTS := pyproject.toml setup.py bindings/build_core.py $(wildcard core/src/*.c core/include/*.h)

.PHONY: demo test lint clean

$(BIN)/.installed: $(INSTALL_INPUTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77" wheel cffi
	$(BIN)/python -m pip install --quiet -e ".[export,bench,dev]"
	touch $@

demo: $(BIN)/.installed
	mkdir -p $(DEMO)
	$(BIN)/rackvae ingest $(RACKVAE_MIDI)/groove --percussion-map extended --time-signature 4/4 \
		--steps-per-quarter 4 --bars-per-sequence 1 --timing snap -o $(DEMO)/groove.npz
	$(BIN)/rackvae train $(DEMO)/groove.npz --name groove -o $(DEMO)/models --overwrite \
		--hidden-sizes 320,192,64 --beta 0.2 --weight-decay 0.1 --learning-rate 0.002 \
		--epochs 150 --patience 10 --stop-patience 25
	$(BIN)/rackvae eval $(DEMO)/models/groove --plots $(DEMO)/plots
	$(BIN)/rackvae export $(DEMO)/models/groove
	$(BIN)/rackvae sample $(DEMO)/models/groove -n 8 --seed 1 -o $(DEMO)/sample
	$(BIN)/rackvae interpolate $(DEMO)/models/groove --steps 8 --bar-a 8 --bar-b 8 -o $(DEMO)/interpolate \
		$(RACKVAE_MIDI)/groove/drummer1/session3/11_afrobeat_94_beat_4-4.mid \
		$(RACKVAE_MIDI)/groove/drummer1/session1/47_jazz_102_beat_4-4.mid
	$(BIN)/rackvae map $(DEMO)/models/groove --points 5 -o $(DEMO)/map
	$(BIN)/rackvae simulate $(DEMO)/models/groove --sweep 8 --midi $(DEMO)/module-hits.mid \
		--screen $(DEMO)/module-hits.png --log $(DEMO)/module-hits.log
	$(BIN)/rackvae train $(DEMO)/groove.npz --name groove-feel -o $(DEMO)/models --overwrite \
		--outputs hits,velocity,offset --hidden-sizes 160,256,64 --velocity-error absolute \
		--offset-error absolute --velocity-weight 3 --offset-weight 6 \
		--beta 0.2 --weight-decay 0.1 --learning-rate 0.002 --epochs 150 --patience 10 --stop-patience 25
	$(BIN)/rackvae eval $(DEMO)/models/groove-feel --plots $(DEMO)/plots-feel
	$(BIN)/rackvae sample $(DEMO)/models/groove-feel -n 8 --seed 1 -o $(DEMO)/sample-feel
	$(BIN)/rackvae export $(DEMO)/models/groove-feel
	$(BIN)/rackvae simulate $(DEMO)/models/groove-feel --sweep 8 --midi $(DEMO)/module.mid \
		--screen $(DEMO)/module.png --log $(DEMO)/module.log

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check host tests bench bindings
	$(BIN)/ruff format --check host tests bench bindings

clean:
	rm -rf out build
