/* MathJax 2 settings of the course site. It uses the STIX web fonts that jupyter-server-mathjax
   ships, served by the site itself. MathJax's own "MathJax_Blank" font (a stand-in while the web
   fonts load) points at about:blank, which Chromium refuses with a console error; a local() source
   gives the same missing font without a request. The fast preview is off: it draws with MathJax's
   TeX fonts (\mathcal in MathJax_Script), which that package leaves out (site.css keeps the hidden
   MathML for screen readers off them too). */
MathJax.Hub.Config({
  "fast-preview": {disabled: true},
  "HTML-CSS": {
    availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
    styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}},
  },
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/sscn.js");
