// Package ui tests the web console (/ui/) in a real browser: Debian's
// chromium, headless, driven through the DevTools protocol (chromedp).
// It is a module of its own so that chromedp stays out of the
// conductor's dependencies.
package ui
